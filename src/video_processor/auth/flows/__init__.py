"""One module per way of getting (or giving up) a token.

These modules import httpx and Authlib; the manager imports them only when a
token request is needed, so reading a valid saved token imports neither.
"""
