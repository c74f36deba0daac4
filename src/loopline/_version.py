__version__ = "0.1.0"

# The REST API's own version, apart from the package's: raised when a change to Loopline's routes
# would break a client or server of the previous API. A client and a server each accept the other
# from its MIN_*_API up; an older or newer peer is refused on its first request with both versions.
API_VERSION = 1
MIN_CLIENT_API = 1  # the oldest client API this server still answers
MIN_SERVER_API = 1  # the oldest server API this client still talks to
