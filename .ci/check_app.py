"""CI's check of the main job: the app started on a fresh clone indexed the sample collection and
answers searches. Usage: check_app.py URL PID (PID: the app's process, to stop waiting if it dies)."""

import os
import sys
import time
import urllib.request

from gradio_client import Client, handle_file


def wait_for(url: str, pid: int, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            sys.exit("the app exited before serving")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(1)
    sys.exit(f"the app did not answer at {url} within {seconds:.0f}s")


def main() -> None:
    url, pid = sys.argv[1], int(sys.argv[2])
    wait_for(url, pid)
    client = Client(url, verbose=False)
    _, hits, status, _ = client.predict(handle_file("samples/coffee.png"), 3, 0.0, api_name="/search_image")
    assert hits[0]["key"] == "coffee.png" and hits[0]["score"] > 0.999, hits
    _, hits, _, link = client.predict("a cup of coffee", 5, -1.0, api_name="/search_text")
    assert len(hits) == 5 and "?q=a+cup+of+coffee&k=5" in link, (hits, link)
    print(f"main job OK: the app indexed the sample collection and answered ({status})")


if __name__ == "__main__":
    main()
