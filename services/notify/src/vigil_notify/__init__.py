"""Vigil notify service."""

from vigil_notify.native import activate as _activate_native

# A compiled build of the hot modules, if one matches their source (see vigil_notify.native),
# goes in front of them before any of them is imported.
_activate_native(__path__)
