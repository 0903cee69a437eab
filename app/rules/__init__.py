"""The rules core: the rule sets as data, loaded strictly, decided by the engine, replayed and tested."""
