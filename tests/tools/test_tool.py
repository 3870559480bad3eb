from __future__ import annotations

import pydantic
import pytest

from agentrt import RunContext, Tool, ToolDefinitionError, function
from agentrt.tools import ToolRegistry


class Catalog(Tool):
    version = "3"

    @function(read_only=True, ttl=30, cache_tags=("products",))
    async def get_product(self, product_id: int, ctx: RunContext, verbose: bool = False) -> dict:
        """Fetch one product.

        Args:
            product_id: The numeric id.
                Continues on a second line.
            verbose: Include the long text.
        """
        return {"id": product_id}

    @function(invalidates=("products",))
    async def set_price(self, product_id: int, price: float) -> str:
        """Change a product's price."""
        return "ok"

    async def helper(self) -> None:
        """Not marked: never shown to the model."""


def test_schema_from_hints_and_docstring() -> None:
    spec = Catalog.functions()["get_product"]
    assert Catalog.name == "catalog"
    assert spec.description == "Fetch one product."
    assert spec.context_param == "ctx"
    assert spec.input_schema == {
        "additionalProperties": False,
        "properties": {
            "product_id": {"description": "The numeric id. Continues on a second line.",
                           "type": "integer"},
            "verbose": {"default": False, "description": "Include the long text.",
                        "type": "boolean"},
        },
        "required": ["product_id"],
        "type": "object",
    }
    assert spec.read_only and spec.options.ttl == 30


def test_unmarked_methods_are_not_functions_and_effects_default_to_side_effects() -> None:
    assert set(Catalog.functions()) == {"get_product", "set_price"}
    assert not Catalog.functions()["set_price"].read_only
    assert Catalog.functions()["set_price"].options.invalidates == ("products",)


def test_validation_normalizes_and_rejects() -> None:
    spec = Catalog.functions()["get_product"]
    assert spec.validate({"product_id": "42"}).model_dump() == {"product_id": 42,
                                                                "verbose": False}
    with pytest.raises(pydantic.ValidationError):
        spec.validate({"product_id": "abc"})
    with pytest.raises(pydantic.ValidationError):
        spec.validate({"product_id": 1, "surprise": True})


def test_definition_is_byte_stable_across_instances() -> None:
    first = [s.definition() for s in Catalog.functions().values()]
    assert first == [s.definition() for s in type(Catalog()).functions().values()]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("def f(self, x: int) -> int:\n    '''Doc.'''\n    return x", "async def"),
        ("async def f(self, x) -> int:\n    '''Doc.'''\n    return x", "needs a type hint"),
        ("async def f(self, x: int) -> int:\n    return x", "no description"),
        ("async def f(self, *xs: int) -> int:\n    '''Doc.'''\n    return 1", "*args"),
    ],
)
def test_malformed_functions_fail_at_class_definition(body: str, message: str) -> None:
    namespace: dict[str, object] = {}
    exec(body, namespace)
    with pytest.raises(ToolDefinitionError, match=message.replace("*", r"\*")):
        type("Broken", (Tool,), {"f": function(namespace["f"])})  # type: ignore[arg-type]


def test_read_only_options_are_checked() -> None:
    with pytest.raises(TypeError):
        function(read_only=True, invalidates=("x",))
    with pytest.raises(TypeError):
        function(ttl=5)


def test_registry_rejects_duplicate_function_names_naming_both_tools() -> None:
    class Other(Tool):
        @function(read_only=True)
        async def get_product(self, product_id: int) -> dict:
            """Another one."""
            return {}

    with pytest.raises(ToolDefinitionError, match="'catalog' and tool 'other'"):
        ToolRegistry([Catalog(), Other()])


def test_registry_lookup_and_definitions_in_order() -> None:
    registry = ToolRegistry([Catalog()])
    bound = registry.get("set_price")
    assert bound is not None and bound.tool.name == "catalog"
    assert registry.get("nope") is None
    assert [d["name"] for d in registry.definitions()] == ["get_product", "set_price"]
