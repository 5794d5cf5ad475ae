"""The OpenAPI description of the document library (service/library.py): list, upload, delete, jobs."""
from __future__ import annotations

from service.openapi_parts import closed_object, error_response, json_response, ref

ADMIN = "needs QA_ADMIN_KEY (X-Admin-Key or Authorization: Bearer); 403 writes_disabled when it is not set"


def library_schemas() -> dict:
    string, integer = {"type": "string"}, {"type": "integer", "minimum": 0}
    nullable = {"type": ["object", "null"]}
    return {
        "DocumentEntry": closed_object({
            "doc_id": string, "title": string, "language": string, "format": string, "passages": integer,
            "sha256": string,
            "status": {"type": "string", "enum": ["indexed", "queued", "indexing", "deleting"]},
        }),
        "PendingChange": closed_object({
            "doc_id": string, "status": {"type": "string", "enum": ["queued", "indexing", "deleting"]},
            "job": string,
        }),
        "DocumentList": closed_object({
            "build": string, "total": integer, "offset": integer, "limit": integer,
            "documents": {"type": "array", "items": ref("DocumentEntry")},
            "pending": {"type": "array", "items": ref("PendingChange")},
            "skipped": {"type": "array", "items": closed_object({"doc_id": string, "reason": string})},
            "writable": {"type": "boolean", "description": "whether uploads and deletions are on (QA_ADMIN_KEY)"},
        }),
        "Job": {
            "type": "object",
            "properties": {
                "id": string, "kind": {"type": "string", "enum": ["upload", "delete"]},
                "state": {"type": "string", "enum": ["queued", "running", "done", "failed"]},
                "created": string, "files": {"type": "array", "items": string},
                "progress": {**nullable, "description": "stage, files_done / files_total, passages_embedded, "
                                                         "passages_cached, seconds per stage"},
                "result": {**nullable, "description": "done: the build id and each file's outcome"},
                "error": {"type": ["string", "null"]},
            },
            "required": ["id", "kind", "state", "created", "files", "progress", "result", "error"],
        },
        "Accepted": {
            "type": "object",
            "properties": {"job": ref("Job"), "documents": {"type": "array", "items": closed_object({
                "doc_id": string, "bytes": integer, "replaced": {"type": "boolean"}})}},
            "required": ["job"],
        },
    }


def library_paths(unavailable: dict) -> dict:
    accepted = json_response(ref("Accepted"), "accepted: the corpus is changed and a build job is queued")
    return {
        "/api/documents": {
            "get": {
                "summary": "The served index's documents with their status, pending changes and skipped files",
                "parameters": [
                    {"name": "folder", "in": "query", "required": False, "schema": ref("Folder")},
                    {"name": "offset", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 0}},
                    {"name": "limit", "in": "query", "required": False,
                     "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}},
                ],
                "responses": {"200": json_response(ref("DocumentList"), "a page of documents, by doc_id"),
                              "400": error_response("invalid_offset or invalid_limit"), "503": unavailable},
            },
            "post": {
                "summary": f"Add documents (multipart/form-data: files, folder, replace); {ADMIN}",
                "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                    "type": "object",
                    "properties": {
                        "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
                        "folder": {"type": "string"}, "replace": {"type": "string", "enum": ["true", "false"]},
                    },
                }}}},
                "responses": {
                    "202": accepted,
                    "400": error_response("no_files, too_many_files, duplicate_names, empty_file or invalid_folder"),
                    "401": error_response("unauthorized: the admin key is missing or wrong"),
                    "403": error_response("writes_disabled"),
                    "409": error_response("already_exists: send replace=true to replace"),
                    "413": error_response("payload_too_large: a file over QA_MAX_UPLOAD_MB"),
                    "415": error_response("unsupported_file_type, or file_type_mismatch: the content is not what "
                                          "the name says"),
                },
            },
        },
        "/api/jobs/{job_id}": {"get": {
            "summary": "A job: queued, running (with progress), done (each file's outcome) or failed",
            "parameters": [{"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": json_response(ref("Job"), "the job"), "404": error_response("not_found")},
        }},
    }


def library_doc_paths() -> dict:
    return {"delete": {
        "summary": f"Remove a document from the corpus and the index; {ADMIN}",
        "parameters": [{"name": "doc_id", "in": "path", "required": True, "schema": {"type": "string"}}],
        "responses": {
            "202": json_response(ref("Accepted"), "accepted: the file is removed and a build job is queued"),
            "400": error_response("invalid_doc_id"),
            "401": error_response("unauthorized: the admin key is missing or wrong"),
            "403": error_response("writes_disabled"),
            "404": error_response("not_found: no such file in the corpus"),
        },
    }}
