"""A secret shown once (a device's password): in full, selectable, with a copy button."""

from __future__ import annotations

import json

from nicegui import ui

from webui.forms import view_only

# The clipboard API exists only on HTTPS and localhost; a plant's plain-HTTP address falls
# back to the older copy command on a hidden text field, which browsers still honour there.
_COPY = """
(() => {{
  const text = {text};
  if (navigator.clipboard && window.isSecureContext) {{
    navigator.clipboard.writeText(text);
    return;
  }}
  const field = document.createElement("textarea");
  field.value = text;
  field.style.position = "fixed";
  field.style.opacity = "0";
  document.body.appendChild(field);
  field.select();
  document.execCommand("copy");
  field.remove();
}})()
"""


def copy_to_clipboard(text: str) -> None:
    """Put ``text`` on the browser's clipboard."""
    ui.run_javascript(_COPY.format(text=json.dumps(text)))


def one_time_secret(label: str, secret: str, marker: str) -> None:
    """``label``, the secret in a monospace box, and a button that copies it."""
    with ui.column().classes("gap-1 w-full"):
        ui.label(label).classes("text-sm text-slate-600")
        with ui.row().classes("items-center gap-2 no-wrap w-full"):
            shown = ui.label(secret).classes(
                "font-mono bg-slate-100 rounded px-2 py-1 select-all break-all"
            )
            shown.mark(marker)

            @view_only
            def copy() -> None:
                copy_to_clipboard(secret)
                ui.notify(f"{label} copied", type="positive")

            ui.button(icon="content_copy", on_click=copy).props(
                f'flat round dense aria-label="Copy {label.lower()}"'
            ).tooltip("Copy").mark(f"{marker}-copy")
