"""One module per resource; `api.app` mounts them."""
