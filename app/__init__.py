"""Reitti: routes employment-service events by the Oulu employment area's plan."""
