"""The API's views, one module per resource; ``base.ApiView`` holds what every call shares."""
