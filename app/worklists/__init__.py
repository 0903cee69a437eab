"""The units' work: worklists, acknowledgements and returns, the customership register's reads, waiting times.

Over the decision log (app/decisions/) and what its writer records beside each decision
(app/register/); the API and the UI call these, and only `reads.py` shows them to people.
"""
