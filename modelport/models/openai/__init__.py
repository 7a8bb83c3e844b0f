"""The OpenAI-shaped model classes (model), the text-generation base class (generation)
and the OpenAI request/response types (types). The OpenAI door is :mod:`modelport.openai.routes`;
``modelport.openai`` re-exports these names."""
