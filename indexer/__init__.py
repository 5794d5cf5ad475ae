"""Indexing pipeline for the bilingual Chinese/English retrieval service."""
