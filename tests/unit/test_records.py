"""The records' quick `__init__` and `==` (`account.records.plain_init`) do what dataclasses' own would."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import account.records

RECORDS = [
    cls
    for _, cls in inspect.getmembers(account.records, inspect.isclass)
    if dataclasses.is_dataclass(cls) and cls.__module__ == account.records.__name__
]
VALUES = (
    st.none() | st.text(max_size=3) | st.integers() | st.tuples(st.integers()) | st.dictionaries(st.text(), st.text())
)


def test_every_record_class_has_the_quick_init() -> None:
    assert len(RECORDS) >= 15
    for cls in RECORDS:
        assert hasattr(cls.__init__, "dataclass_init"), cls.__name__


@pytest.mark.parametrize("cls", RECORDS, ids=lambda cls: cls.__name__)
@given(data=st.data())
def test_a_record_is_the_object_its_dataclass_init_makes_however_its_fields_are_given(
    cls: type[Any], data: st.DataObject
) -> None:
    fields = dataclasses.fields(cls)
    required = [f for f in fields if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    given_ = required + [f for f in fields if f not in required and data.draw(st.booleans(), label=f.name)]
    values = {f.name: data.draw(VALUES, label=f.name) for f in given_}
    positional = data.draw(st.integers(0, len(required)), label="positional")
    args = [values[f.name] for f in required[:positional]]
    kwargs = {name: value for name, value in values.items() if name not in {f.name for f in required[:positional]}}
    quick = cls(*args, **kwargs)
    made = object.__new__(cls)
    cls.__init__.dataclass_init(made, *args, **kwargs)
    assert quick.__dict__ == made.__dict__ and list(quick.__dict__) == list(made.__dict__)
    assert quick == made and repr(quick) == repr(made)
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(quick, fields[0].name, None)


def test_a_default_factory_gives_each_record_its_own_value() -> None:
    first = account.records.Contact(uid="a")
    second = account.records.Contact(uid="b")
    assert first.extra == second.extra == {} and first.extra is not second.extra


def test_a_record_refuses_an_unknown_field_as_its_dataclass_init_does() -> None:
    with pytest.raises(TypeError):
        account.records.When(nonsense=1)  # type: ignore[call-arg]


def _by_fields(first: Any, second: Any) -> bool:
    """Dataclasses' generated `==`: the same class, and the tuples of their fields equal."""
    fields = dataclasses.fields(first)
    return first.__class__ is second.__class__ and tuple(getattr(first, f.name) for f in fields) == tuple(
        getattr(second, f.name) for f in fields
    )


@pytest.mark.parametrize("cls", RECORDS, ids=lambda cls: cls.__name__)
@given(data=st.data())
def test_records_are_equal_exactly_when_dataclasses_would_say_so(cls: type[Any], data: st.DataObject) -> None:
    fields = dataclasses.fields(cls)
    required = [f for f in fields if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    small = st.none() | st.sampled_from(["a", "b"]) | st.just(("a",)) | st.just(float("nan"))
    first = cls(**{f.name: data.draw(small, label=f"first {f.name}") for f in required})
    changed = {f.name: data.draw(small, label=f"second {f.name}") for f in fields if data.draw(st.booleans())}
    second = dataclasses.replace(first, **changed)
    assert (first == second) is _by_fields(first, second)
    assert (first != second) is not _by_fields(first, second)
    if first == second and _hashable(first):
        assert hash(first) == hash(second)


def _hashable(record: Any) -> bool:
    try:
        hash(record)
    except TypeError:  # a field holds a dict (Contact.extra)
        return False
    return True


def test_a_record_is_never_equal_to_another_kind_of_record_with_the_same_fields() -> None:
    assert account.records.Name(family="a") != account.records.Name(family="a").__dict__
    assert account.records.When() != account.records.CalendarInfo.__new__(account.records.CalendarInfo)
    assert (account.records.When() == object()) is False
