"""The plain-Python floor the benchmark measures tap-smartforms against.

What any tap must do at the least, with nothing else: for each data source, get an
access token, fetch every page with requests, decode it with json, shape it with the
tap's own API shaping, api_shape.py (the same records), and print one Singer RECORD line per record.
No SDK, no schema typing, no state, no retries.

    python scripts/plain_python_floor.py config.json > /dev/null
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import requests

from tap_smartforms import api_shape


def _records(page: api_shape.Page, *, first: bool) -> list[tuple[str, api_shape.Record]]:
    out: list[tuple[str, api_shape.Record]] = []
    if first and page.form is not None:
        out.append(("forms", page.form))
        out += [("questions", question) for question in page.questions]
    for bundle in page.responses:
        out += [("answers", answer) for answer in bundle.answers]
        out += [("attachments", attachment) for attachment in bundle.attachments]
        out.append(("responses", bundle.record))
    return out


def sync(config: dict[str, Any], write: Any) -> None:
    session = requests.Session()
    page_size = int(config.get("page_size", api_shape.MAX_PAGE_SIZE))
    for source in config["data_sources"]:
        token = session.post(
            config["oauth_token_url"],
            json={
                "grant_type": "refresh_token",
                "client_id": config["client_id"],
                "client_secret": config["client_secret"],
                "refresh_token": source["refresh_token"],
            },
            timeout=30,
        ).json()["access_token"]
        endpoint = api_shape.parse_data_source_url(source["url"])
        offset = 0
        while True:
            reply = session.get(
                endpoint.url,
                params=api_shape.page_params(
                    endpoint, offset=offset, limit=page_size, updated_from=None
                ),
                headers={"Authorization": f"Bearer {token}"},
                timeout=60,
            )
            reply.raise_for_status()
            page = api_shape.shape_page(reply.json(), endpoint.data_source_id)
            for stream, record in _records(page, first=offset == 0):
                write(json.dumps({"type": "RECORD", "stream": stream, "record": record}) + "\n")
            offset += page.received
            if page.received < page_size:
                break


if __name__ == "__main__":
    sync(json.loads(Path(sys.argv[1]).read_text(encoding="utf-8")), sys.stdout.write)
