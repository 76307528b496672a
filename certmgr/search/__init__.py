"""Finding applications and certificates by what people remember of them: the header's search box,
and the application pickers (a text box that suggests as you type, and resolves on the server)."""
