"""Text handling shared by the indexer and the service: decode, clean (with offsets), normalize, segment.

One copy of every rule: the indexer cleans and normalizes documents with it, the service normalizes
questions with it, so a question and a passage always meet in the same normalized form.
"""
