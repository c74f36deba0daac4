"""Wire formats shared by the server (which encodes) and the REST client (which decodes)."""
