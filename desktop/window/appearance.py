"""Puts a theme (``theme.py``) on the Qt application: Fusion, a palette, a small style sheet,
pyqtgraph's defaults; and keeps it there as the system switches between light and dark.

Fusion draws every widget from the palette alone, the same on Linux, Windows and macOS, so
one palette per theme is the whole look; the style sheet only rounds the panels and paints
the tones (``set_tone``). Widgets drawn before a change keep their colours only where a view
set them itself: the chart does, so it listens to ``ThemeFollower.changed``.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QWidget

from desktop.window.theme import ON_FILL, Scheme, Theme, Tone, theme_for

STYLE = "Fusion"
Role = QPalette.ColorRole
Group = QPalette.ColorGroup


def palette(theme: Theme) -> QPalette:
    """The theme as a Qt palette (disabled text in the theme's faint colour)."""
    colours = {
        Role.Window: theme.window,
        Role.WindowText: theme.text,
        Role.Base: theme.surface,
        Role.AlternateBase: theme.alternate,
        Role.Text: theme.text,
        Role.Button: theme.button,
        Role.ButtonText: theme.text,
        Role.ToolTipBase: theme.surface,
        Role.ToolTipText: theme.text,
        Role.PlaceholderText: theme.faint,
        Role.Highlight: theme.accent,
        Role.HighlightedText: theme.on_accent,
        Role.Accent: theme.accent,
        Role.Link: theme.tone_text[Tone.BUSY],
        Role.LinkVisited: theme.tone_text[Tone.BUSY],
        Role.BrightText: theme.tone_text[Tone.BAD],
        # Fusion's bevels and frame lines: from the border, lighter and darker around it.
        Role.Light: theme.surface,
        Role.Midlight: theme.alternate,
        Role.Mid: theme.border,
        Role.Dark: theme.border,
        Role.Shadow: theme.window if theme.dark else theme.border,
    }
    result = QPalette()
    for role, colour in colours.items():
        result.setColor(role, QColor(colour))
    for role in (Role.WindowText, Role.Text, Role.ButtonText):
        result.setColor(Group.Disabled, role, QColor(theme.faint))
    result.setColor(Group.Disabled, Role.Base, QColor(theme.window))
    return result


def stylesheet(theme: Theme) -> str:
    """Rounded panels, quiet headers, and one rule per tone: coloured text, or a badge."""
    rules = [
        # A panel: its title sits in the margin above it, a caption, not a gap in its border.
        f"QGroupBox {{ background: {theme.surface}; border: 1px solid {theme.border};"
        " border-radius: 8px; margin-top: 1.3em; padding: 0px; }",
        "QGroupBox::title { subcontrol-origin: margin; subcontrol-position: top left;"
        f" left: 8px; padding: 0 4px; color: {theme.muted}; }}",
        f"QFrame#operator_bar, QFrame#sign_in_box {{ background: {theme.surface};"
        f" border: 1px solid {theme.border}; border-radius: 8px; }}",
        f"QHeaderView::section {{ background: {theme.alternate}; color: {theme.muted};"
        f" border: none; border-bottom: 1px solid {theme.border}; padding: 4px 8px; }}",
        f"QTableView, QListWidget {{ border: 1px solid {theme.border}; border-radius: 6px;"
        f" gridline-color: {theme.border}; }}",
        # Qt gives tooltips the system's palette, not the application's: say it here.
        f"QToolTip {{ background: {theme.surface}; color: {theme.text};"
        f" border: 1px solid {theme.border}; padding: 4px; }}",
        # Read only, a granted permission stays as legible as any text.
        f"QCheckBox:disabled:checked {{ color: {theme.text}; }}",
    ]
    for tone in Tone:
        rules.append(f'QLabel[tone="{tone}"] {{ color: {theme.tone_text[tone]}; }}')
    rules.append('QLabel[tone="bad"] { font-weight: bold; }')  # a refusal must not be missed
    # A badge's shape matches from its first polish, whatever its tone: Qt sets a label's
    # padding when it is polished, and re-polishing for a new tone would not set it again.
    rules.append(
        'QLabel[badge="true"] { border-radius: 9px; padding: 3px 12px; font-weight: bold; }'
    )
    for tone in Tone:
        rules.append(
            f'QLabel[badge="true"][tone="{tone}"] {{ background: {theme.tone_fill[tone]};'
            f" color: {ON_FILL}; }}"
        )
    return "\n".join(rules)


def apply(app: QApplication, theme: Theme) -> Theme:
    """Dress the application (and pyqtgraph's next items) in ``theme``; returns it."""
    app.setStyle(STYLE)
    app.setPalette(palette(theme))
    app.setStyleSheet(stylesheet(theme))
    pg.setConfigOptions(
        background=theme.chart_background, foreground=theme.chart_foreground, antialias=True
    )
    return theme


def set_tone(label: QWidget, tone: Tone | None) -> None:
    """Colour ``label`` as ``tone`` says (None: plain text), in whichever theme is on."""
    label.setProperty("tone", tone.value if tone is not None else "")
    style = label.style()
    style.unpolish(label)  # a dynamic property is matched only when the widget is re-polished
    style.polish(label)
    label.update()


class ThemeFollower(QObject):
    """Keeps the application in the theme asked for: a forced one, or the system's as it
    switches. ``changed`` carries the new theme to what paints its own colours (the chart)."""

    changed = Signal(object)

    def __init__(self, app: QApplication, scheme: Scheme) -> None:
        super().__init__()
        self.app, self.scheme = app, scheme
        hints = app.styleHints()
        if scheme is not Scheme.SYSTEM:  # native parts (a title bar) follow where they can
            hints.setColorScheme(
                Qt.ColorScheme.Dark if scheme is Scheme.DARK else Qt.ColorScheme.Light
            )
        self.theme = apply(app, theme_for(scheme, hints.colorScheme() is Qt.ColorScheme.Dark))
        hints.colorSchemeChanged.connect(self.follow)

    def follow(self, system: Qt.ColorScheme) -> None:
        """The system's scheme changed: switch, unless a theme is forced."""
        theme = theme_for(self.scheme, system is Qt.ColorScheme.Dark)
        if theme != self.theme:
            self.theme = apply(self.app, theme)
            self.changed.emit(theme)

    def stop(self) -> None:
        """Stop following; the application keeps the theme it has."""
        hints = self.app.styleHints()
        hints.colorSchemeChanged.disconnect(self.follow)
        if self.scheme is not Scheme.SYSTEM:
            hints.unsetColorScheme()
