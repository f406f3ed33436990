"""The page's own style and scripts: readable captions over results, a screen-reader-friendly
status line, scrolling to the results when they arrive, the search in the address bar (reload,
bookmarks, Back), "/" to the search box, the copy-link button, and the Duplicates tab's rows of
thumbnails."""

from __future__ import annotations

CSS = """
/* Captions over result images: light text on a dark band, readable on any picture. */
#results .caption-label { background: rgba(0, 0, 0, 0.78) !important; color: #fff !important; }
#share { align-self: center; }
/* On a phone, two results a row: Gradio's fixed four columns would push one out of sight. */
@media (max-width: 640px) {
  #results .grid-container { grid-template-columns: repeat(2, minmax(0, 1fr)) !important; }
}
#copy-link { flex-grow: 0; min-width: max-content; }
#copy-link.copied { outline: 2px solid var(--color-accent); }
/* The Duplicates tab: each group a row of thumbnails, captioned with their name and similarity. */
#duplicates .dup-row { display: flex; flex-wrap: wrap; gap: 12px; }
#duplicates .dup-item { display: flex; flex-direction: column; width: 148px; font-size: 0.8em; }
#duplicates .dup-item img {
  width: 148px; height: 148px; object-fit: contain; background: var(--block-background-fill);
}
#duplicates .dup-item span { overflow-wrap: anywhere; }
#duplicates h3 { margin: 1em 0 0.4em; }
/* While the Duplicates tab is open, the search's examples and results are out of sight. */
body.duplicates-mode #examples, body.duplicates-mode #search-results { display: none !important; }
"""

# Runs once when the page loads: the status line becomes a polite live region, so a screen reader
# announces "12 results for …" or an error without the visitor looking for it; the copy-link
# button waits for a search that has a link; "/" anywhere but in a text box goes to the search
# box (as on most search sites); Back and Forward, which walk the searches (ON_RESULTS), open
# the search of the address they come to; and a link under Options (app.index_status: a year,
# a country) lists its photos in this tab, not a new one.
ON_LOAD = """
() => {
  const status = document.querySelector('#status');
  if (status) {
    status.setAttribute('role', 'status');
    status.setAttribute('aria-live', 'polite');
  }
  const copy = document.querySelector('#copy-link');
  if (copy && !document.querySelector('#share a')) copy.style.display = 'none';
  document.addEventListener('keydown', (event) => {
    const typing = event.target.closest('input, textarea, select, [contenteditable]');
    const box = document.querySelector('#query textarea, #query input');
    if (event.key === '/' && !typing && !event.ctrlKey && !event.metaKey && !event.altKey && box) {
      event.preventDefault();
      box.focus();
    }
  });
  window.addEventListener('popstate', () => window.location.reload());
  // A year or a country under Options, the captions' link on the status line: here, not in a new tab.
  document.addEventListener('click', (event) => {
    const link = event.target.closest('#index-status a, #status a');
    if (link) {
      event.preventDefault();
      window.location.assign(link.href);
    }
  });
}
"""

# New results: bring the status line (with the results right below it) to the top of the
# screen, so a visitor sees them without scrolling, on a phone too; show the copy-link button
# only when the search has a link (an uploaded image has none); and put the search in the
# address bar and the tab's title, so that a reload, a bookmark or Back finds it again (a new
# history entry per search, the page's first replacing the address it opened with).
ON_RESULTS = """
() => {
  const status = document.querySelector('#status');
  if (window.buscadorMore) window.buscadorMore = false;  // appended results: stay where they are
  else if (status) status.scrollIntoView({block: 'start'});
  const link = document.querySelector('#share a');
  const copy = document.querySelector('#copy-link');
  if (copy) copy.style.display = link ? '' : 'none';
  const address = link ? new URL(link.getAttribute('href'), window.location.href) : null;
  const search = address ? address.search : '';
  if (search !== window.location.search) {
    const go = window.buscadorSearched ? 'pushState' : 'replaceState';
    window.history[go](null, '', window.location.pathname + search);
  }
  window.buscadorSearched = true;
  const words = address && address.searchParams.get('q');
  document.title = words ? words + ' · Buscador Visual' : 'Buscador Visual';
}
"""

# "More results": its answer is appended below, where the visitor already is (no scroll up).
BEFORE_MORE = """
(...inputs) => { window.buscadorMore = true; return inputs; }
"""

# The copy-link button: the current search's link, made absolute, onto the clipboard.
COPY_LINK = """
async () => {
  const link = document.querySelector('#share a');
  const button = document.querySelector('#copy-link');
  if (!link) return;
  const url = new URL(link.getAttribute('href'), window.location.href).href;
  try {
    await navigator.clipboard.writeText(url);
    button.classList.add('copied');
    setTimeout(() => button.classList.remove('copied'), 2000);
  } catch (err) {
    window.prompt('', url);  // no clipboard (an insecure page, a refusal): offer it to copy by hand
  }
}
"""


def duplicates_mode(on: bool) -> str:
    """A tab's select script: the Duplicates tab hides the search's examples and results (CSS
    above), the search tabs show them again."""
    return f"() => {{ document.body.classList.toggle('duplicates-mode', {'true' if on else 'false'}); }}"
