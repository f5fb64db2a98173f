"""Geometry clean-up shared by the bundled sample data and the user-file importer.

The main entry point is :func:`repair_polygons`, which turns a polygon layer of
uneven quality into one where every row holds a valid Polygon or MultiPolygon,
and says in plain words what it changed and which rows it had to refuse.

This module is part of ``layers`` and so must stay free of any UI library
(dash, plotly, pydeck): it only depends on geopandas and shapely.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field

import geopandas as gpd
import shapely
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

SQUARE_METRES_PER_SQUARE_KM = 1_000_000


@dataclass
class RepairResult:
    """Outcome of :func:`repair_polygons`.

    ``gdf`` holds only the accepted rows (original index kept), ``repaired``
    one line per row that was changed, ``refused`` one line per row that was
    dropped because nothing polygonal could be made of it.
    """

    gdf: gpd.GeoDataFrame
    repaired: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    @property
    def report_lines(self) -> list[str]:
        """All report lines, repairs first, refusals after."""
        return self.repaired + self.refused


def polygonal_parts(geometry: BaseGeometry) -> list[Polygon]:
    """Return the non-empty polygons inside ``geometry``, at any nesting depth.

    ``make_valid`` typically returns a GeometryCollection that mixes a
    (Multi)Polygon with the LineStrings/Points left over from collapsed
    spikes; only the areal pieces are meaningful for a boundary layer.
    """
    if geometry is None:
        return []
    return [leaf for leaf in _flatten(geometry) if isinstance(leaf, Polygon) and not leaf.is_empty]


def normalise_polygonal(polygons: list[Polygon]) -> Polygon | MultiPolygon:
    """Combine polygons into a Polygon (one part) or MultiPolygon (several parts).

    The pieces coming out of ``make_valid`` do not overlap, but pieces picked
    out of an arbitrary GeometryCollection might, so fall back to a union
    whenever the plain MultiPolygon would be invalid.
    """
    if not polygons:
        raise ValueError("normalise_polygonal needs at least one polygon")
    combined = polygons[0] if len(polygons) == 1 else MultiPolygon(polygons)
    if not combined.is_valid:
        combined = shapely.unary_union(polygons)
        polygons = polygonal_parts(combined)
        combined = polygons[0] if len(polygons) == 1 else MultiPolygon(polygons)
    return combined


def part_count(geometry: BaseGeometry) -> int:
    """Number of polygon parts (0 for a non-polygonal geometry)."""
    return len(polygonal_parts(geometry))


def _areas_km2(geometries: list[BaseGeometry], crs, area_crs) -> list[float | None]:
    """Areas in km², measured in ``area_crs``; ``None`` when the layer has no CRS.

    Invalid geometries are measured as they are (shoelace formula), which is
    exactly the "before" figure we want to show next to the repaired one.
    """
    if crs is None:
        return [None] * len(geometries)
    series = gpd.GeoSeries(geometries, crs=crs)
    target_crs = area_crs if area_crs is not None else series.estimate_utm_crs()
    return list(series.to_crs(target_crs).area / SQUARE_METRES_PER_SQUARE_KM)


def _format_area(area_km2: float | None) -> str:
    return "? km²" if area_km2 is None else f"{area_km2:.2f} km²"


def repair_polygons(
    gdf: gpd.GeoDataFrame,
    id_column: str | None = None,
    source: str = "layer",
    area_crs=None,
) -> RepairResult:
    """Make every row of a polygon layer a valid Polygon or MultiPolygon.

    For each row:

    * a valid Polygon/MultiPolygon is kept as it is (a one-part MultiPolygon
      is normalised to a Polygon, silently: that is not a repair);
    * an invalid geometry is passed through ``shapely.make_valid``;
    * of the (possibly repaired) geometry only the polygonal parts are kept,
      so lines and points from collapsed rings are dropped;
    * if nothing polygonal is left (missing, empty, a line, a degenerate
      ring...) the row is refused and left out of the result.

    Parameters
    ----------
    gdf:
        The layer to clean. It is not modified.
    id_column:
        Column used to name rows in the report; the index is used when None.
    source:
        Name of the data source (e.g. the file name), prefixed to every
        report line so that messages make sense outside their context.
    area_crs:
        Projected CRS used to report areas in km². When None, a UTM zone is
        estimated from the data. Areas are omitted when ``gdf`` has no CRS.

    Returns
    -------
    RepairResult
        The accepted rows (same columns and index labels as ``gdf``) plus
        human-readable ``repaired`` and ``refused`` report lines.
    """
    repaired_lines: list[str] = []
    refused_lines: list[str] = []
    kept_positions: list[int] = []
    kept_geometries: list[BaseGeometry] = []
    # (row name, original geometry, repaired geometry, what was done) for the
    # rows whose areas must be reported; areas are computed in one batch below.
    changed_rows: list[tuple[str, BaseGeometry, BaseGeometry, list[str]]] = []

    # Rows are addressed by position, so that a duplicated index cannot
    # duplicate or mislabel rows.
    for position, (label, geometry) in enumerate(gdf.geometry.items()):
        row_name = _row_name(gdf, position, label, id_column)

        if geometry is None or geometry.is_empty:
            refused_lines.append(f"{source}: {row_name}: refused, the geometry is missing or empty")
            continue

        is_polygon_type = isinstance(geometry, (Polygon, MultiPolygon))
        if geometry.is_valid and is_polygon_type:
            kept_positions.append(position)
            kept_geometries.append(normalise_polygonal(polygonal_parts(geometry)))
            continue

        problems: list[str] = []
        candidate = geometry
        if not geometry.is_valid:
            problems.append(f"invalid ({explain_validity(geometry)}), fixed with make_valid")
            candidate = shapely.make_valid(geometry)

        polygons = polygonal_parts(candidate)
        if not polygons:
            if candidate is geometry:
                reason = f"a {geometry.geom_type} is not a polygon"
            else:
                reason = (
                    f"invalid ({explain_validity(geometry)}) and make_valid "
                    f"turned it into a {candidate.geom_type} with no area"
                )
            refused_lines.append(f"{source}: {row_name}: refused, {reason}")
            continue

        dropped = _non_polygonal_summary(candidate)
        if dropped:
            problems.append(f"dropped non-polygonal pieces ({dropped})")
        if not is_polygon_type and geometry.is_valid:
            problems.append(f"kept the polygonal parts of a {geometry.geom_type}")

        repaired = normalise_polygonal(polygons)
        kept_positions.append(position)
        kept_geometries.append(repaired)
        changed_rows.append((row_name, geometry, repaired, problems))

    if changed_rows:
        before = _areas_km2([row[1] for row in changed_rows], gdf.crs, area_crs)
        after = _areas_km2([row[2] for row in changed_rows], gdf.crs, area_crs)
        for (row_name, original, repaired, problems), area_before, area_after in zip(
            changed_rows, before, after
        ):
            repaired_lines.append(
                f"{source}: {row_name}: {'; '.join(problems)}; "
                f"area {_format_area(area_before)} -> {_format_area(area_after)}, "
                f"parts {part_count(original)} -> {part_count(repaired)}"
            )

    cleaned = gdf.iloc[kept_positions].copy()
    # Assign to the existing active geometry column, whatever its name.
    cleaned[cleaned.geometry.name] = gpd.GeoSeries(kept_geometries, index=cleaned.index, crs=gdf.crs)
    return RepairResult(gdf=cleaned, repaired=repaired_lines, refused=refused_lines)


def _row_name(gdf: gpd.GeoDataFrame, position: int, label: Hashable, id_column: str | None) -> str:
    """'row 3', or 'row 3 (code=G00)': the row (the index label, the file order for the importer) always, so that
    a message can be traced to the file even when ids repeat or are empty."""
    if id_column is None:
        return f"row {label}"
    return f"row {label} ({id_column}={gdf[id_column].iloc[position]})"


def _non_polygonal_summary(geometry: BaseGeometry) -> str:
    """Describe the non-polygonal leaves of ``geometry``, e.g. '2 LineString, 1 Point'."""
    counts: dict[str, int] = {}
    for leaf in _flatten(geometry):
        if not isinstance(leaf, Polygon) and not leaf.is_empty:
            counts[leaf.geom_type] = counts.get(leaf.geom_type, 0) + 1
    return ", ".join(f"{count} {kind}" for kind, count in sorted(counts.items()))


def _flatten(geometry: BaseGeometry) -> list[BaseGeometry]:
    """All single-part leaves of ``geometry`` (Points, LineStrings, Polygons...)."""
    if hasattr(geometry, "geoms"):
        return [leaf for member in geometry.geoms for leaf in _flatten(member)]
    return [geometry]
