"""Page modules: each has a ``router`` (``fastapi.APIRouter``) of page handlers, found by
:func:`cairn.ui.mount.page_routers`; adding a page is adding a module here."""
