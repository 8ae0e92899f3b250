"""Authentication and authorisation: who is calling (principals, tokens, passwords, service
clients) and what they may see (the object-level access policy). ADR 0006."""
