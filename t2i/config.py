"""Typed configuration, validated in one place.

A run is described by one `Config` made of small dataclasses, its sections (sections.py; named
presets are in presets.py). Command-line overrides such as `model.depth=8` are parsed against
the field's declared type and applied with `dataclasses.replace`, so a typo is an error, never a
new field. Every section checks its fields' types and ranges whenever it is built — from a
preset with overrides, from JSON, from a checkpoint's `config.json` — and a bad value is a
`ConfigError` naming the field, the value and what is allowed, before any work starts. The full
config travels inside every checkpoint, which is enough to sample.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field

from . import sections
from .fields import ConfigError, parse


@dataclass(frozen=True)
class Config:
    """A full configuration: one section per concern. A checkpoint stores it whole, so a
    checkpoint alone is enough to sample; `override(["section.field=value", ...])` type-checks."""
    preset: str = "custom"
    model: sections.ModelConfig = field(default_factory=sections.ModelConfig)
    text: sections.TextConfig = field(default_factory=sections.TextConfig)
    data: sections.DataConfig = field(default_factory=sections.DataConfig)
    vae: sections.VAEConfig = field(default_factory=sections.VAEConfig)
    objective: sections.ObjectiveConfig = field(default_factory=sections.ObjectiveConfig)
    train: sections.TrainConfig = field(default_factory=sections.TrainConfig)
    sample: sections.SampleConfig = field(default_factory=sections.SampleConfig)

    @property
    def latent(self) -> bool:
        """Whether the backbone works in a VAE's latent space (else in pixel space)."""
        return bool(self.vae.name)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, d: dict) -> "Config":
        if not isinstance(d, dict):
            raise ConfigError("a config must be a JSON object")
        sections = {}
        for f in dataclasses.fields(cls):
            if f.name == "preset":
                continue
            sub_cls = typing.get_type_hints(cls)[f.name]
            known = {g.name for g in dataclasses.fields(sub_cls)}
            values = d.get(f.name, {})
            if not isinstance(values, dict):
                raise ConfigError(f"config section {f.name!r} must be an object, not {values!r}")
            unknown = set(values) - known
            if unknown:
                raise ConfigError(f"unknown {f.name} fields in config: {sorted(unknown)}")
            sections[f.name] = sub_cls(**values)
        return cls(preset=d.get("preset", "custom"), **sections)

    @classmethod
    def from_json(cls, text: str) -> "Config":
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"not JSON ({e})") from None
        except RecursionError:
            raise ConfigError("not a config: JSON nested too deeply") from None
        return cls.from_dict(d)

    def override(self, assignments: list[str]) -> "Config":
        """Apply `section.field=value` strings, each parsed to the field's declared type. The
        rules are checked once, after all of them apply, so their order never matters (a later
        assignment of the same field wins)."""
        sections = {f.name for f in dataclasses.fields(self)} - {"preset"}
        changes: dict[str, dict] = {}
        for item in assignments:
            key, sep, raw = item.partition("=")
            section, dot, name = key.strip().partition(".")
            if not sep or not dot:
                raise ValueError(f"override {item!r} must look like section.field=value")
            if section not in sections:
                raise ValueError(f"unknown config section {section!r}; one of {sorted(sections)}")
            hints = typing.get_type_hints(type(getattr(self, section)))
            if name not in hints:
                raise ValueError(f"unknown field {section}.{name}; one of {sorted(hints)}")
            changes.setdefault(section, {})[name] = parse(raw.strip(), hints[name], key)
        return dataclasses.replace(self, **{section: dataclasses.replace(getattr(self, section), **values)
                                            for section, values in changes.items()})
