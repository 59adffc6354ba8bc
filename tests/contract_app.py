"""An app that uses every feature the contract documents: unions, optional fields,
nested Structs, constraints and examples, bytes and datetimes, pushes, error codes."""

from __future__ import annotations

import datetime
from typing import Annotated, Literal

import msgspec

import fastcomm

app = fastcomm.App(
    title="Orders",
    version="2.1.0",
    description="Place and track orders.",
    error_codes=("out_of_stock",),
)

Quantity = Annotated[int, msgspec.Meta(ge=1, le=100, examples=[3], description="how many")]


class Item(msgspec.Struct):
    """One line of an order."""

    sku: Annotated[str, msgspec.Meta(pattern="^[A-Z]{3}-[0-9]+$", examples=["ABC-1"])]
    quantity: Quantity = 1


class Card(msgspec.Struct, tag="card"):
    number: Annotated[str, msgspec.Meta(min_length=12, max_length=19)]


class Voucher(msgspec.Struct, tag="voucher"):
    code: str


class PlaceOrder(fastcomm.Message, tag="place_order"):
    """Place an order; answered with its id."""

    items: list[Item]
    payment: Card | Voucher
    note: str | None = None
    deliver_by: datetime.datetime | None = None
    gift_wrap: bool = False
    priority: Literal["low", "high"] = "low"
    attachment: bytes | None = None


class Order(msgspec.Struct):
    id: str
    total: Annotated[float, msgspec.Meta(ge=0)]
    items: list[Item]
    shipping: tuple[str, int] | None = None


class GetOrder(fastcomm.Message, tag="get_order"):
    order: str


class OrderShipped(fastcomm.ServerMessage, tag="order_shipped"):
    """Pushed when an order leaves the warehouse."""

    order: str
    at: datetime.datetime


class Notice(fastcomm.Message, tag="notice"):
    text: str


app.pushes(OrderShipped, Notice)


@app.on(PlaceOrder)
async def place_order(msg: PlaceOrder, conn: fastcomm.Connection) -> str:
    """Check stock, then store the order."""
    if msg.items[0].sku == "NON-0":
        raise fastcomm.WireError("out_of_stock", "no stock")
    return "order-1"


@app.on(GetOrder)
def get_order(msg: GetOrder, conn: fastcomm.Connection) -> Order | None:
    return Order(id=msg.order, total=1.5, items=[Item(sku="ABC-1")])
