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
    QSplitter,
    QStackedWidget,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from desktop.window.operator_bar import OperatorBar
from desktop.window.sign_in_view import SignInView
from desktop.window.time_axis import ClockAxis, zone_label
from desktop.window.values_model import ValuesModel

BADGE_STYLE = "QLabel {{ background: {colour}; color: white; border-radius: 9px; padding: 3px 12px;"
BADGE_STYLE += " font-weight: bold; }}"
PLOT_HEIGHT = 150  # pixels per channel's plot before the chart scrolls
# Pixels; one width for every plot so their time axes line up: room for five digits and
# the unit's label beside them.
AXIS_WIDTH = 72
AXIS_PEN = "#555"  # ticks and labels: pyqtgraph's default grey is faint on white


def _label(name: str, text: str = "") -> QLabel:
    label = QLabel(text)
    label.setObjectName(name)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


class StationView(QMainWindow):
    """Connection badge, live values, chart, outbox and replay, configuration, event log.

    Under the header, either the station (with the signed-in operator's bar above it) or the
    sign-in page: ``lock`` and ``unlock`` switch between them. Unlocked, without an operator
    bar, until a sign-in controller locks it.
    """

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("station_window")
        self.resize(1100, 720)

        self.title = QLabel()
        self.title.setObjectName("title")
        font = self.title.font()
        font.setPointSize(font.pointSize() + 5)
        font.setBold(True)
        self.title.setFont(font)
        self.badge = _label("badge", "offline")
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
        outbox = QGroupBox("Outbox")
        outbox_form = QFormLayout(outbox)
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
        self.chart.setBackground("w")
        self.plots: list[pg.PlotItem] = []  # top to bottom
        self._plot_of: dict[str, pg.PlotItem] = {}  # by channel
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

    def show_badge(self, text: str, colour: str) -> None:
        """Paint the connection badge."""
        self.badge.setText(text)
        self.badge.setStyleSheet(BADGE_STYLE.format(colour=colour))

    def add_curve(self, name: str, unit: str = "") -> pg.PlotDataItem:
        """A new plot under the others for one channel, its time axis linked to theirs; the
        top plot's time axis names the zone (once: the chart scrolls, the top shows first)."""
        plot = self.chart.addPlot(row=len(self.plots), col=0, axisItems={"bottom": ClockAxis()})
        plot.setTitle(name, size="9pt", color="#333")
        plot.showGrid(x=True, y=True, alpha=0.3)
        for side in ("left", "bottom"):
            axis = plot.getAxis(side)
            axis.setPen(AXIS_PEN)
            axis.setTextPen(AXIS_PEN)
        plot.getAxis("left").setWidth(AXIS_WIDTH)
        plot.getAxis("left").enableAutoSIPrefix(False)  # "°C" must not become "k°C"
        if self.plots:
            plot.setXLink(self.plots[0])
        else:
            plot.setLabel("bottom", zone_label(), color=AXIS_PEN)
        self.plots.append(plot)
        self._plot_of[name] = plot
        self.set_unit(name, unit)
        self.chart.setMinimumHeight(PLOT_HEIGHT * len(self.plots))
        colour = pg.intColor(len(self.plots) - 1, hues=6, maxValue=190)
        return plot.plot([], [], name=name, pen=pg.mkPen(colour, width=2))

    def set_unit(self, name: str, unit: str) -> None:
        """Label a channel's value axis with its unit ("" for none)."""
        plot = self._plot_of.get(name)
        if plot is None:
            return
        if unit:
            plot.setLabel("left", unit, color=AXIS_PEN)
        else:
            plot.showLabel("left", False)


def _titled(title: str, widget: QWidget) -> QGroupBox:
    box = QGroupBox(title)
    layout = QVBoxLayout(box)
    layout.addWidget(widget)
    return box
