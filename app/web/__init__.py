"""The web surfaces, the API and the UI, thin over the services below them."""
