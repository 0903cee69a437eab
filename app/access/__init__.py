"""Who may do what: API keys, the UI's accounts and sessions, roles, identity codes and their pseudonyms."""
