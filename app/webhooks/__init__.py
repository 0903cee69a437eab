"""Webhooks: subscriptions, the outbox written with each record, signing, URL safety and delivery."""
