"""Open a Word file's package as python-docx 1.2 opens it, and hand back the body's XML.

A .docx is an OPC package: [Content_Types].xml names each part's type, and
relationship files (_rels/*.rels) lead from the package to the main document
and from there to styles, headers, images... python-docx walks that graph,
reads every part it reaches and parses the XML parts it has a class for; a
broken graph or a broken part makes it refuse the file. This module walks
the same graph in the same order and raises the same exceptions (KeyError
for a missing part or type, lxml's XMLSyntaxError for broken XML, ValueError
when the main part is not a plain Word document), so a file python-docx
refuses is refused here with the same words, but it builds no object model:
the caller gets the main document's root element, parsed once.

The parser is the one python-docx uses (blank text removed, entities left
unresolved) with the network and huge trees off; the caller has already
checked the zip's sizes and refused any DOCTYPE (mailbot.documents.word).
"""

from __future__ import annotations

import hashlib
import posixpath
import zipfile
from dataclasses import dataclass

from lxml import etree

_CT_NS = "{http://schemas.openxmlformats.org/package/2006/content-types}"
_REL_NS = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_OFFICE_RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
OFFICE_DOCUMENT = _OFFICE_RELS + "officeDocument"
IMAGE = _OFFICE_RELS + "image"
_WML = "application/vnd.openxmlformats-officedocument.wordprocessingml."
DOCUMENT_MAIN = _WML + "document.main+xml"
# The content types python-docx has a part class for, whose XML it parses on opening.
PARSED_TYPES = frozenset(
    [
        "application/vnd.openxmlformats-package.core-properties+xml",
        _WML + "comments+xml",
        DOCUMENT_MAIN,
        _WML + "footer+xml",
        _WML + "header+xml",
        _WML + "numbering+xml",
        _WML + "settings+xml",
        _WML + "styles+xml",
    ]
)


def xml_parser() -> etree.XMLParser:
    """python-docx's parser settings, hardened: no network, no huge trees, no entities."""
    return etree.XMLParser(
        remove_blank_text=True,
        resolve_entities=False,
        no_network=True,
        huge_tree=False,
        load_dtd=False,
    )


@dataclass(frozen=True)
class _Rel:
    rid: str | None
    reltype: str | None
    target: str  # a part name for an internal target, the reference for an external one
    external: bool


@dataclass(frozen=True)
class _Part:
    name: str
    content_type: str | None
    reltype: str | None
    blob: bytes


class _Package:
    """The zip, its content types, and the part names already reached."""

    def __init__(self, archive: zipfile.ZipFile, parser: etree.XMLParser) -> None:
        self.archive, self.parser = archive, parser
        types = etree.fromstring(archive.read("[Content_Types].xml"), parser)
        # python-docx keeps both maps case-insensitively; the last entry of a key wins.
        self.overrides = {
            _required(o, "PartName", AttributeError).lower(): o.get("ContentType")
            for o in types.findall(_CT_NS + "Override")
        }
        self.defaults = {
            _required(d, "Extension", AttributeError).lower(): d.get("ContentType")
            for d in types.findall(_CT_NS + "Default")
        }

    def content_type(self, name: str) -> str | None:
        if name.lower() in self.overrides:
            return self.overrides[name.lower()]
        raw_ext = posixpath.splitext(name)[1]
        ext = raw_ext[1:] if raw_ext.startswith(".") else raw_ext
        if ext.lower() in self.defaults:
            return self.defaults[ext.lower()]
        raise KeyError(f"no content type for partname '{name}' in [Content_Types].xml")

    def rels_of(self, name: str) -> list[_Rel]:
        """The relationships going out of part ``name`` ("/" for the package)."""
        base, filename = posixpath.split(name)
        try:
            xml = self.archive.read(posixpath.join(base, "_rels", filename + ".rels")[1:])
        except KeyError:
            return []
        rels = []
        for rel in etree.fromstring(xml, self.parser).findall(_REL_NS + "Relationship"):
            external = rel.get("TargetMode", "Internal") == "External"
            target = rel.get("Target") or ""
            if not external:
                target = posixpath.join(base, _required(rel, "Target", TypeError))
                target = posixpath.abspath(target)
            rels.append(_Rel(rel.get("Id"), rel.get("Type"), target, external))
        return rels


def _required(element: etree._Element, name: str, error: type[Exception]) -> str:
    """An attribute python-docx uses as a string, failing with the error it fails with."""
    value = element.get(name)
    if value is None:
        raise error(f"an element has no {name}")
    return str(value)


def _walk(
    package: _Package, rels: list[_Rel], seen: list[str]
) -> list[tuple[str, bytes, str | None]]:
    """Every part reached from ``rels``, depth first, as python-docx's reader visits them."""
    found = []
    for rel in rels:
        if rel.external or rel.target in seen:
            continue
        seen.append(rel.target)
        part_rels = package.rels_of(rel.target)
        found.append((rel.target, package.archive.read(rel.target[1:]), rel.reltype))
        found.extend(_walk(package, part_rels, seen))
    return found


# Digests of parts (styles, settings...) that parsed before in this process. Forms made
# from one template share their 350 KB styles part, which costs more to parse than the
# document itself; parsing is deterministic, so one that parsed once parses again.
_WELL_FORMED: set[bytes] = set()
_WELL_FORMED_MAX = 256


def _check_well_formed(blob: bytes, parser: etree.XMLParser) -> None:
    """Raise what parsing ``blob`` raises (XMLSyntaxError), as python-docx parses it."""
    digest = hashlib.sha256(blob).digest()
    if digest in _WELL_FORMED:
        return
    etree.fromstring(blob, parser)
    if len(_WELL_FORMED) >= _WELL_FORMED_MAX:
        _WELL_FORMED.clear()
    _WELL_FORMED.add(digest)


def main_document(archive: zipfile.ZipFile) -> etree._Element:
    """The root element of the main document part; raises as python-docx 1.2 would.

    KeyError, XMLSyntaxError or OSError for a broken package, ValueError when
    the main part is not a Word document (a macro-enabled one, a template).
    """
    parser = xml_parser()
    package = _Package(archive, parser)
    package_rels = package.rels_of("/")
    parts = [
        _Part(name, package.content_type(name), reltype, blob)
        for name, blob, reltype in _walk(package, package_rels, [])
    ]
    parsed: dict[str, etree._Element] = {}
    for part in parts:
        if part.reltype != IMAGE and part.content_type in PARSED_TYPES:
            if part.content_type == DOCUMENT_MAIN:
                parsed[part.name] = etree.fromstring(part.blob, parser)
            else:
                _check_well_formed(part.blob, parser)
    by_id = {rel.rid: rel for rel in package_rels}  # a repeated Id: the last one counts
    mains = [rel for rel in by_id.values() if rel.reltype == OFFICE_DOCUMENT]
    if not mains:
        raise KeyError(f"no relationship of type '{OFFICE_DOCUMENT}' in collection")
    if len(mains) > 1:
        raise ValueError(f"multiple relationships of type '{OFFICE_DOCUMENT}' in collection")
    main = mains[0]
    if main.external:
        raise ValueError("target_part property on _Relationship is undefined when external")
    content_type = next(p.content_type for p in parts if p.name == main.target)
    if content_type != DOCUMENT_MAIN:
        raise ValueError(f"not a Word file, content type is '{content_type}'")
    if main.target not in parsed:  # python-docx took it for an image: it has no document
        raise AttributeError("the main document part was not read as XML")
    return parsed[main.target]
