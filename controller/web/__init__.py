"""The tablet web layer: JSON API, live WebSocket, staff login, static UI (see API.md).

Import ``controller.web.app`` for the aiohttp application; this package itself imports nothing
heavy so ``sessionctl staff`` starts fast.
"""
