"""The station window's layout: widgets and how they sit; no behaviour (see the controller)."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QMainWindow,
    QProgressBar,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QStackedWidget,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from desktop.window.appearance import set_tone
from desktop.window.operator_bar import OperatorBar
from desktop.window.sign_in_view import SignInView
from desktop.window.theme import LIGHT, Theme, Tone
from desktop.window.time_axis import ClockAxis, zone_label
from desktop.window.values_model import ValuesModel

PLOT_HEIGHT = 150  # pixels per channel's plot before the chart scrolls
# Pixels; one width for every plot so their time axes line up: room for five digits and
# the unit's label beside them.
AXIS_WIDTH = 72
ROW_PADDING = 8  # pixels above and below a table row's text, together
GRID_ALPHA = 0.25  # grid lines a quarter as strong as the axes: there to read by, not to see
LINE_WIDTH = 2  # pixels: a 1-pixel line is lost on a bright screen at arm's length


def _label(name: str, text: str = "") -> QLabel:
    label = QLabel(text)
    label.setObjectName(name)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def _badge(name: str, text: str) -> QLabel:
    """A state's word on a rounded fill of its tone's colour (the style sheet paints it)."""
    badge = QLabel(text)
    badge.setObjectName(name)
    badge.setProperty("badge", True)
    badge.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Fixed)  # its word's width
    return badge


class StationView(QMainWindow):
    """Connection badge, live values, chart, outbox and replay, configuration, event log.

    Under the header, either the station (with the signed-in operator's bar above it) or the
    sign-in page: ``lock`` and ``unlock`` switch between them. Unlocked, without an operator
    bar, until a sign-in controller locks it. The chart draws in ``theme`` until
    ``apply_theme`` gives another (the rest follows the application's palette by itself).
    """

    def __init__(self, theme: Theme = LIGHT) -> None:
        super().__init__()
        self.setObjectName("station_window")
        self.theme = theme
        self.resize(1100, 720)

        self.title = QLabel()
        self.title.setObjectName("title")
        font = self.title.font()
        font.setPointSize(font.pointSize() + 5)
        font.setBold(True)
        self.title.setFont(font)
        self.badge = _badge("badge", "offline")
        self.since = _label("since")
        self.link_detail = _label("link_detail")
        self.link_detail.setWordWrap(True)
        header = QHBoxLayout()
        for widget in (self.title, self.badge, self.since):
            header.addWidget(widget)
        header.addWidget(self.link_detail, 1)

        self.values_model = ValuesModel(self)  # owned by the window: they go together
        self.values = QTableView()
        self.values.setObjectName("values")
        self.values.setModel(self.values_model)
        self.values.verticalHeader().hide()
        # Rows a line and a little high, not Fusion's roomy default: five channels show whole
        # beside the operator bar in the window's first size.
        rows = self.values.verticalHeader()
        rows.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        rows.setDefaultSectionSize(self.values.fontMetrics().height() + ROW_PADDING)
        self.values.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.values.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.values.setAlternatingRowColors(True)

        self.last_seq = _label("last_seq", "—")
        self.acked_seq = _label("acked_seq", "—")
        self.outbox_depth = _label("outbox_depth", "—")
        self.refused = _label("refused", "0")
        self.dropped = _label("dropped", "0")
        self.replay = QProgressBar()
        self.replay.setObjectName("replay")
        self.sync = _badge("sync", "nothing waiting")
        outbox = QGroupBox("Outbox")
        outbox_form = QFormLayout(outbox)
        outbox_form.addRow("Sync", self.sync)
        outbox_form.addRow("Last sample seq", self.last_seq)
        outbox_form.addRow("Acknowledged up to", self.acked_seq)
        outbox_form.addRow("Waiting for ack", self.outbox_depth)
        outbox_form.addRow("Dropped (cap)", self.dropped)
        outbox_form.addRow("Refused (cap)", self.refused)
        outbox_form.addRow("Replay", self.replay)

        self.config_device = _label("config_device")
        self.config_broker = _label("config_broker")
        self.config_interval = _label("config_interval")
        self.config_version = _label("config_version")
        self.config_cap = _label("config_cap")
        self.config_outbox = _label("config_outbox")
        self.config_outbox.setWordWrap(True)
        self.config_stream = _label("config_stream")
        config = QGroupBox("Configuration in effect")
        config_form = QFormLayout(config)
        config_form.addRow("Device", self.config_device)
        config_form.addRow("Broker", self.config_broker)
        config_form.addRow("Interval", self.config_interval)
        config_form.addRow("Configuration", self.config_version)
        config_form.addRow("Outbox cap", self.config_cap)
        config_form.addRow("Outbox file", self.config_outbox)
        config_form.addRow("Stream", self.config_stream)

        # One small plot per numeric channel on a shared time axis: channels differ in scale.
        self.chart = pg.GraphicsLayoutWidget()
        self.chart.setObjectName("chart")
        self.chart.setBackground(theme.chart_background)
        self.plots: list[pg.PlotItem] = []  # top to bottom
        self._plot_of: dict[str, pg.PlotItem] = {}  # by channel
        self._units: dict[str, str] = {}  # by channel, as last labelled
        chart_area = QScrollArea()
        chart_area.setWidget(self.chart)
        chart_area.setWidgetResizable(True)
        chart_area.setFrameShape(QFrame.Shape.NoFrame)
        self.events = QListWidget()
        self.events.setObjectName("events")
        self.events.setAlternatingRowColors(True)
        # A refusal's reason runs long: lines wrap to the log's width, never under a scrollbar.
        self.events.setWordWrap(True)
        self.events.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.events.setResizeMode(QListWidget.ResizeMode.Adjust)

        left = QWidget()
        left_column = QVBoxLayout(left)
        left_column.setContentsMargins(0, 0, 0, 0)
        left_column.addWidget(_titled("Live values", self.values), 1)
        left_column.addWidget(outbox)
        left_column.addWidget(config)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(_titled("Numeric channels", chart_area))
        right.addWidget(_titled("Events", self.events))
        right.setSizes([500, 180])
        body = QSplitter(Qt.Orientation.Horizontal)
        body.addWidget(left)
        body.addWidget(right)
        body.setSizes([400, 700])

        self.operator_bar = OperatorBar()
        self.operator_bar.hide()  # shown once someone signs in
        self.station = QWidget()
        self.station.setObjectName("station")
        station_column = QVBoxLayout(self.station)
        station_column.setContentsMargins(0, 0, 0, 0)
        station_column.addWidget(self.operator_bar)
        station_column.addWidget(body, 1)
        self.sign_in = SignInView()
        self.pages = QStackedWidget()
        self.pages.addWidget(self.station)
        self.pages.addWidget(self.sign_in)

        central = QWidget()
        page = QVBoxLayout(central)
        page.addLayout(header)
        page.addWidget(self.pages, 1)
        self.setCentralWidget(central)

    @property
    def locked(self) -> bool:
        """Whether the sign-in page hides the station."""
        return self.pages.currentWidget() is self.sign_in

    def lock(self, message: str = "") -> None:
        """Hide the station behind an empty sign-in form (``message``: why, if anything)."""
        self.operator_bar.hide()
        self.sign_in.reset(message)
        self.pages.setCurrentWidget(self.sign_in)
        self.sign_in.username.setFocus()

    def unlock(self) -> None:
        """Show the station with the operator's bar."""
        self.operator_bar.show()
        self.pages.setCurrentWidget(self.station)

    def show_badge(self, text: str, tone: Tone) -> None:
        """Say the link's state in the connection badge."""
        self.badge.setText(text)
        set_tone(self.badge, tone)

    def show_sync(self, text: str, tone: Tone) -> None:
        """Say whether the server has what the station sampled, in the outbox's badge."""
        self.sync.setText(text)
        set_tone(self.sync, tone)

    def add_curve(self, name: str, unit: str = "") -> pg.PlotDataItem:
        """A new plot under the others for one channel, its time axis linked to theirs; the
        top plot's time axis names the zone (once: the chart scrolls, the top shows first)."""
        plot = self.chart.addPlot(row=len(self.plots), col=0, axisItems={"bottom": ClockAxis()})
        plot.showGrid(x=True, y=True, alpha=GRID_ALPHA)
        plot.getAxis("left").setWidth(AXIS_WIDTH)
        plot.getAxis("left").enableAutoSIPrefix(False)  # "°C" must not become "k°C"
        if self.plots:
            plot.setXLink(self.plots[0])
        self.plots.append(plot)
        self._plot_of[name] = plot
        self._units[name] = unit
        curve = plot.plot([], [], name=name)
        self._paint(name, plot)
        self.chart.setMinimumHeight(PLOT_HEIGHT * len(self.plots))
        return curve

    def set_unit(self, name: str, unit: str) -> None:
        """Label a channel's value axis with its unit ("" for none)."""
        plot = self._plot_of.get(name)
        if plot is None:
            return
        self._units[name] = unit
        if unit:
            plot.setLabel("left", unit, color=self.theme.chart_foreground)
        else:
            plot.showLabel("left", False)

    def apply_theme(self, theme: Theme) -> None:
        """Repaint the chart in ``theme`` (the widgets follow the application's palette)."""
        self.theme = theme
        self.chart.setBackground(theme.chart_background)
        for name, plot in self._plot_of.items():
            self._paint(name, plot)

    def _paint(self, name: str, plot: pg.PlotItem) -> None:
        """Give one channel's plot the theme's colours: its title, axes, labels and line."""
        theme, index = self.theme, self.plots.index(plot)
        plot.setTitle(name, size="9pt", color=theme.chart_foreground)
        for side in ("left", "bottom"):
            axis = plot.getAxis(side)
            axis.setPen(theme.chart_foreground)
            axis.setTextPen(theme.chart_foreground)
        if index == 0:
            plot.setLabel("bottom", zone_label(), color=theme.chart_foreground)
        self.set_unit(name, self._units.get(name, ""))
        pen = pg.mkPen(theme.series_colour(index), width=LINE_WIDTH)
        for curve in plot.listDataItems():
            curve.setPen(pen)


def _titled(title: str, widget: QWidget) -> QGroupBox:
    box = QGroupBox(title)
    layout = QVBoxLayout(box)
    layout.addWidget(widget)
    return box
