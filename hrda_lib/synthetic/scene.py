"""Street-scene geometry of the synthetic benchmark: a pinhole camera over a straight street.

Draws the label map of one scene (train ids 0..18, 255 void) with an instance map and a
material map for the renderer (`render.py`). World coordinates in metres: x to the
right, y up from the ground, z forward from the camera; painter's order (far first). Object
sizes are real-world sizes, except that poles keep a fixed width of 1-3 px at 512 px image
width (the thin structures that half resolution loses).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

ROAD, SIDEWALK, BUILDING, WALL, FENCE, POLE, LIGHT, SIGN, VEGETATION, TERRAIN = range(10)
SKY, PERSON, RIDER, CAR, TRUCK, BUS, TRAIN, MOTORCYCLE, BICYCLE = range(10, 19)
VOID = 255
BASE, DARK, LIGHT_MATERIAL, BARK, HOOD = range(5)  # material codes for the renderer
Z_NEAR, Z_FAR = 1.0, 400.0  # metres


@dataclass(frozen=True)
class Camera:
    """Pinhole camera at `height` metres above the ground, looking down the street."""

    focal: float  # px
    horizon: float  # image row of the horizon, px
    center_x: float  # image column of the vanishing point, px
    height: float = 1.6  # m

    def project(self, x: float, y: float, z: float) -> tuple[float, float]:
        """World point (x, y, z) -> image (column, row)."""
        return self.center_x + self.focal * x / z, self.horizon + self.focal * (self.height - y) / z


class Canvas:
    """The three maps being drawn: label (train ids), instance ids and materials."""

    def __init__(self, height: int, width: int) -> None:
        self.label = np.full((height, width), SKY, dtype=np.uint8)
        self.instance = np.zeros((height, width), dtype=np.int32)
        self.material = np.zeros((height, width), dtype=np.uint8)
        self.n_instances = 1
        self.width = width

    def new_instance(self) -> int:
        self.n_instances += 1
        return self.n_instances - 1

    def polygon(self, points, cls: int, instance: int, material: int = BASE) -> None:
        """Fill a polygon [(col, row), ...] with a class, an instance and a material."""
        pts = np.round(np.clip(np.asarray(points, dtype=np.float64), -1e5, 1e5) * 4).astype(
            np.int32
        )
        self.fill(lambda m: cv2.fillPoly(m, [pts], 1, shift=2), cls, instance, material)

    def ellipse(self, center, axes, cls: int, instance: int, material: int = BASE) -> None:
        """Fill an axis-aligned ellipse (col, row) with half-axes (a, b) in px."""
        c = (int(round(center[0] * 4)), int(round(center[1] * 4)))
        a = (max(int(round(axes[0] * 4)), 2), max(int(round(axes[1] * 4)), 2))
        self.fill(
            lambda m: cv2.ellipse(m, c, a, 0, 0, 360, 1, -1, shift=2), cls, instance, material
        )

    def line(self, p1, p2, thickness: int, cls: int, instance: int, material: int = BASE) -> None:
        """Draw a straight segment `thickness` px wide."""
        a = (int(round(p1[0] * 4)), int(round(p1[1] * 4)))
        b = (int(round(p2[0] * 4)), int(round(p2[1] * 4)))
        self.fill(
            lambda m: cv2.line(m, a, b, 1, max(thickness, 1), shift=2), cls, instance, material
        )

    def fill(self, draw: Callable[[np.ndarray], None], cls, instance, material) -> None:
        mask = np.zeros(self.label.shape, dtype=np.uint8)
        draw(mask)
        on = mask.astype(bool)
        if cls is not None:
            self.label[on], self.instance[on] = cls, instance
        self.material[on] = material


def log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    """A depth drawn uniformly in log(z): as many near as far objects per octave."""
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def ground_quad(cam: Camera, x1: float, x2: float, z1: float, z2: float) -> list:
    return [
        cam.project(x1, 0, z1),
        cam.project(x2, 0, z1),
        cam.project(x2, 0, z2),
        cam.project(x1, 0, z2),
    ]


def side_quad(cam: Camera, x: float, z1: float, z2: float, y1: float, y2: float) -> list:
    """A vertical plane at lateral position x from depth z1 to z2, heights y1..y2."""
    return [
        cam.project(x, y1, z1),
        cam.project(x, y1, z2),
        cam.project(x, y2, z2),
        cam.project(x, y2, z1),
    ]


def front_quad(cam: Camera, x1: float, x2: float, y1: float, y2: float, z: float) -> list:
    """A rectangle facing the camera at depth z."""
    return [
        cam.project(x1, y1, z),
        cam.project(x2, y1, z),
        cam.project(x2, y2, z),
        cam.project(x1, y2, z),
    ]


@dataclass(frozen=True)
class Street:
    road_half: float  # m, half the road width
    sidewalk: float  # m, sidewalk width
    setback: tuple[float, float]  # m, terrain strip between sidewalk and facades (left, right)

    def facade_x(self, side: int) -> float:
        return side * (self.road_half + self.sidewalk + self.setback[side > 0])


def _setback(rng: np.random.Generator) -> float:
    """Width of the terrain strip in front of one side's facades (none in a third of scenes)."""
    return float(rng.uniform(1.5, 7.0)) if rng.random() < 0.65 else 0.0


def draw_ground(canvas: Canvas, cam: Camera, street: Street, rng, target: bool) -> None:
    """Terrain everywhere below the horizon, then sidewalks, road and (source) lane marks."""
    rows = slice(int(np.ceil(cam.horizon)), None)
    canvas.label[rows], canvas.instance[rows] = TERRAIN, canvas.new_instance()
    outer = street.road_half + street.sidewalk
    for side in (-1, 1):
        inner, edge = side * street.road_half, side * outer
        canvas.polygon(
            ground_quad(cam, inner, edge, Z_NEAR, Z_FAR), SIDEWALK, canvas.new_instance()
        )
    road = canvas.new_instance()
    canvas.polygon(ground_quad(cam, -street.road_half, street.road_half, Z_NEAR, Z_FAR), ROAD, road)
    if target:
        return
    for x in (0.0, -street.road_half + 0.3, street.road_half - 0.3):
        dashed = x == 0.0
        for z in np.arange(2.0, 120.0, 9.0 if dashed else 120.0):
            z2 = z + 3.0 if dashed else Z_FAR
            canvas.polygon(ground_quad(cam, x - 0.08, x + 0.08, z, z2), None, road, LIGHT_MATERIAL)


def draw_building(canvas: Canvas, cam: Camera, x: float, z1: float, z2: float, rng) -> None:
    """A facade plane with a grid of dark windows (windows only while they are > 1 px)."""
    height = rng.uniform(7.0, 26.0)
    instance = canvas.new_instance()
    canvas.polygon(side_quad(cam, x, z1, z2, 0.0, height), BUILDING, instance)
    if cam.focal * 1.2 / z2 < 1.5:
        return
    for y in np.arange(1.2, height - 1.5, 3.0):
        for z in np.arange(z1 + 0.8, z2 - 1.2, 2.6):
            quad = side_quad(cam, x, z, z + 1.2, y, y + 1.5)
            canvas.polygon(quad, None, instance, DARK)


def draw_side(canvas: Canvas, cam: Camera, street: Street, side: int, rng) -> None:
    """One side of the street, far to near: buildings, park blocks, gaps; walls and fences."""
    x = street.facade_x(side)
    segments, z = [], rng.uniform(2.0, 6.0)
    while z < 160.0:
        length = rng.uniform(8.0, 30.0)
        segments.append((z, z + length, rng.choice(3, p=[0.68, 0.14, 0.18])))
        z += length
    for z1, z2, kind in reversed(segments):
        if kind == 0:
            draw_building(canvas, cam, x, z1, z2, rng)
        elif kind == 1:
            hedge = side_quad(cam, x, z1, z2, 0.0, rng.uniform(2.0, 7.0))
            canvas.polygon(hedge, VEGETATION, canvas.new_instance())
    edge = side * (street.road_half + street.sidewalk + 0.05)
    for _ in range(rng.poisson(1.6)):
        z1 = log_uniform(rng, 4.0, 60.0)
        z2 = z1 + rng.uniform(4.0, 16.0)
        if rng.random() < 0.5:
            canvas.polygon(
                side_quad(cam, edge, z1, z2, 0, rng.uniform(1.0, 2.6)), WALL, canvas.new_instance()
            )
        else:
            instance, top = canvas.new_instance(), rng.uniform(1.1, 1.9)
            canvas.polygon(side_quad(cam, edge, z1, z2, 0, top), FENCE, instance)
            for zz in np.arange(z1 + 0.6, z2, 0.7):  # lattice gaps, darker
                canvas.polygon(
                    side_quad(cam, edge, zz, zz + 0.3, 0.2, top - 0.15), None, instance, DARK
                )


def draw_skyline(canvas: Canvas, cam: Camera, rng) -> None:
    """Buildings and trees closing the street at 160-220 m."""
    x = -60.0
    while x < 60.0:
        width = rng.uniform(6.0, 20.0)
        z = rng.uniform(160.0, 220.0)
        top = rng.uniform(8.0, 45.0)
        cls = VEGETATION if rng.random() < 0.2 else BUILDING
        canvas.polygon(front_quad(cam, x, x + width, 0.0, top, z), cls, canvas.new_instance())
        x += width


def draw_person(canvas: Canvas, cam: Camera, x: float, z: float, cls: int, rng, y0=0.0) -> None:
    """A standing person (or a rider's upper body when y0 > 0) facing the camera: legs apart,
    arms as thin limbs, a head; thin parts that half resolution loses."""
    instance = canvas.new_instance()
    tall = rng.uniform(1.6, 1.9)
    px = cam.focal / z  # px per metre at this depth
    limb = max(int(round(0.08 * px)), 1)
    if y0 == 0.0:
        stride = rng.uniform(0.0, 0.18)  # legs apart while walking
        for dx in (-0.15 - stride / 2, 0.03 + stride / 2):  # legs
            canvas.polygon(front_quad(cam, x + dx, x + dx + 0.12, 0.0, 0.9, z), cls, instance)
        y_torso = 0.85
    else:
        y_torso = y0
    shoulder = y_torso + 0.58
    canvas.polygon(front_quad(cam, x - 0.19, x + 0.19, y_torso, shoulder, z), cls, instance)
    swing = rng.uniform(0.05, 0.3)
    for side in (-1, 1):  # arms, hanging or reaching forward (riders) from the shoulders
        hand_y = y_torso + (0.25 if y0 else -0.05)
        a = cam.project(x + side * 0.22, shoulder - 0.05, z)
        b = cam.project(x + side * (0.22 + swing), hand_y, z)
        canvas.line(a, b, limb, cls, instance)
    head_y = shoulder + 0.14 if y0 else tall - 0.13
    canvas.line(cam.project(x, shoulder, z), cam.project(x, head_y, z), limb, cls, instance)  # neck
    center = cam.project(x, head_y, z)
    radius = cam.focal * 0.11 / z
    canvas.ellipse(center, (radius, radius * 1.15), cls, instance, LIGHT_MATERIAL if y0 else BASE)


def draw_vehicle(canvas: Canvas, cam: Camera, cls: int, x: float, z: float, size, rng) -> None:
    """A box-shaped vehicle driving along the street: visible side, rear with window, tyres."""
    width, height, length = size
    instance = canvas.new_instance()
    near_side = x - np.sign(x) * width / 2 if abs(x) > width / 2 else None
    if near_side is not None:
        canvas.polygon(side_quad(cam, near_side, z, z + length, 0.3, height), cls, instance)
        canvas.polygon(
            side_quad(cam, near_side, z + 0.3, z + length - 0.3, height * 0.55, height * 0.85),
            None,
            instance,
            DARK,
        )
        for zw in (z + 0.5, z + length - 1.2):
            canvas.polygon(side_quad(cam, near_side, zw, zw + 0.7, 0.0, 0.55), cls, instance, DARK)
    left, right = x - width / 2, x + width / 2
    inset = 0.2 * width if cls == CAR else 0.0
    canvas.polygon(front_quad(cam, left, right, 0.3, height * 0.62, z), cls, instance)
    canvas.polygon(
        front_quad(cam, left + inset, right - inset, height * 0.6, height, z), cls, instance
    )
    canvas.polygon(
        front_quad(cam, left + inset + 0.1, right - inset - 0.1, height * 0.66, height * 0.92, z),
        None,
        instance,
        DARK,
    )
    for xw in (left, right - 0.35):
        canvas.polygon(front_quad(cam, xw, xw + 0.35, 0.0, 0.4, z), cls, instance, DARK)


def draw_two_wheeler(canvas: Canvas, cam: Camera, cls: int, x: float, z: float, rng) -> None:
    """A motorcycle or bicycle crossing the street (side view), with a rider or parked."""
    instance = canvas.new_instance()
    px = cam.focal / z  # px per metre at this depth
    radius = 0.33 * px
    rear, front = cam.project(x, 0.33, z), cam.project(x + 1.1, 0.33, z)
    seat, bar = cam.project(x + 0.3, 0.95, z), cam.project(x + 0.95, 1.05, z)
    if cls == MOTORCYCLE:
        tyre = max(int(round(0.11 * px)), 1)
        for wheel in (rear, front):  # tyres as rings: the hub shows the background
            c = (int(round(wheel[0] * 4)), int(round(wheel[1] * 4)))
            r = max(int(round((radius - tyre / 2) * 4)), 4)
            canvas.fill(
                lambda m, c=c, r=r: cv2.circle(m, c, r, 1, tyre, shift=2), cls, instance, DARK
            )
        body = [cam.project(x + 0.25, 0.45, z), cam.project(x + 0.85, 0.45, z), bar, seat]
        canvas.polygon(body, cls, instance)
        frame = max(int(round(0.07 * px)), 1)
        for a, b in ((rear, seat), (bar, front)):
            canvas.line(a, b, frame, cls, instance)
    else:
        thick = max(int(round(0.04 * px)), 1)
        for wheel in (rear, front):
            c = (int(round(wheel[0] * 4)), int(round(wheel[1] * 4)))
            r = max(int(round(radius * 4)), 4)
            canvas.fill(
                lambda m, c=c, r=r: cv2.circle(m, c, r, 1, thick, shift=2), cls, instance, DARK
            )
        crank = cam.project(x + 0.5, 0.33, z)
        for a, b in ((rear, seat), (seat, crank), (crank, rear), (seat, bar), (bar, front)):
            canvas.line(a, b, thick, cls, instance)
    if rng.random() < 0.85:  # ridden
        draw_person(canvas, cam, x + 0.45, z - 0.05, RIDER, rng, y0=0.9)


def draw_pole(canvas: Canvas, cam: Camera, x: float, z: float, rng) -> None:
    """A pole 0.08-0.16 m thick (1 px at least: 1-2 px beyond 20 m at 512 px width, a few px
    near) with a traffic light or signs, or bare."""
    instance = canvas.new_instance()
    top = rng.uniform(3.5, 7.0)
    width_px = max(round(cam.focal * rng.uniform(0.08, 0.16) / z), 1)
    col, row0 = cam.project(x, 0.0, z)
    row1 = cam.project(x, top, z)[1]
    c0 = int(round(col - width_px / 2))
    c1 = c0 + width_px - 1  # polygon fills include their boundary: columns c0..c1
    canvas.polygon([(c0, row0), (c1, row0), (c1, row1), (c0, row1)], POLE, instance)
    kind = rng.choice(3, p=[0.4, 0.4, 0.2])
    if kind == 0:  # traffic light on an arm over the road
        arm = -np.sign(x) * rng.uniform(1.0, 3.0)
        a, b = cam.project(x, top, z), cam.project(x + arm, top, z)
        canvas.line(a, b, width_px, POLE, instance)
        light = canvas.new_instance()
        box = front_quad(cam, x + arm - 0.12, x + arm + 0.12, top - 0.7, top, z)
        canvas.polygon(box, LIGHT, light)
        lamp = cam.project(x + arm, top - 0.2 - 0.22 * rng.integers(0, 3), z)
        canvas.ellipse(lamp, (0.08 * cam.focal / z,) * 2, LIGHT, light, LIGHT_MATERIAL)
        if rng.random() < 0.5:  # a pedestrian light lower on the pole
            low = rng.uniform(2.0, 2.8)
            canvas.polygon(
                front_quad(cam, x - 0.1, x + 0.1, low, low + 0.45, z), LIGHT, canvas.new_instance()
            )
    elif kind == 1:  # traffic signs: squares, discs and triangles
        for _ in range(1 + int(rng.random() < 0.35)):
            sign = canvas.new_instance()
            y = rng.uniform(2.0, top - 0.4)
            half = rng.uniform(0.1, 0.25)
            shape = rng.integers(3)
            if shape == 0:
                quad = front_quad(cam, x - half, x + half, y - half, y + half, z)
                canvas.polygon(quad, SIGN, sign)
            elif shape == 1:
                r = cam.focal * half / z
                canvas.ellipse(cam.project(x, y, z), (r, r), SIGN, sign)
            else:
                tri = [
                    cam.project(x - half, y - half, z),
                    cam.project(x + half, y - half, z),
                    cam.project(x, y + half, z),
                ]
                canvas.polygon(tri, SIGN, sign)


def draw_tree(canvas: Canvas, cam: Camera, x: float, z: float, rng) -> None:
    """A tree at the sidewalk edge: trunk and crown, both vegetation."""
    instance = canvas.new_instance()
    crown_y, radius = rng.uniform(3.5, 6.0), rng.uniform(1.7, 3.0)
    canvas.polygon(front_quad(cam, x - 0.15, x + 0.15, 0.0, crown_y, z), VEGETATION, instance, BARK)
    axes = (cam.focal * radius / z, cam.focal * radius * 1.1 / z)
    canvas.ellipse(cam.project(x, crown_y + 0.5, z), axes, VEGETATION, instance)


def draw_scene(
    height: int, width: int, rng: np.random.Generator, target: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw one street scene.

    Returns:
        label (H, W) uint8 train ids (255 void), instance (H, W) int32, material (H, W) uint8
        (material HOOD marks the target's ego-vehicle hood, which is void).
    """
    cam = Camera(
        focal=width * rng.uniform(0.5, 0.6),
        horizon=height * rng.uniform(0.36, 0.46),
        center_x=width * rng.uniform(0.42, 0.58),
    )
    street = Street(
        road_half=rng.uniform(4.0, 6.0),
        sidewalk=rng.uniform(3.0, 5.0),
        setback=(_setback(rng), _setback(rng)),
    )
    canvas = Canvas(height, width)
    canvas.instance[:] = canvas.new_instance()  # the sky
    draw_skyline(canvas, cam, rng)
    draw_ground(canvas, cam, street, rng, target)
    for side in (-1, 1):
        draw_side(canvas, cam, street, side, rng)

    objects: list[tuple[float, Callable[[], None]]] = []

    def add(z: float, fn: Callable, *args) -> None:
        objects.append((z, lambda: fn(canvas, cam, *args)))

    kerb = street.road_half + 0.4
    walk = (street.road_half + 0.5, street.road_half + street.sidewalk - 0.3)
    for _ in range(rng.poisson(9.0)):
        side, z = rng.choice([-1, 1]), log_uniform(rng, 6.0, 120.0)
        add(z, draw_pole, side * kerb, z, rng)
    for _ in range(rng.poisson(3.5)):
        side, z = rng.choice([-1, 1]), log_uniform(rng, 6.0, 80.0)
        add(z, draw_tree, side * (walk[1] + 0.2), z, rng)
    for _ in range(rng.poisson(9.0)):
        side, z = rng.choice([-1, 1]), log_uniform(rng, 7.0, 120.0)
        add(z, draw_person, side * rng.uniform(*walk), z, PERSON, rng)
    for _ in range(rng.poisson(1.5)):  # distant groups of pedestrians
        side, z = rng.choice([-1, 1]), rng.uniform(30.0, 120.0)
        for _ in range(rng.integers(2, 5)):
            x = side * rng.uniform(*walk)
            add(z, draw_person, x, z + rng.uniform(-2.0, 2.0), PERSON, rng)
    for _ in range(rng.poisson(3.5)):  # driving cars, right-hand traffic
        lane = rng.choice([-1, 1]) * street.road_half * rng.uniform(0.35, 0.6)
        z = log_uniform(rng, 6.0, 80.0)
        add(z, draw_vehicle, CAR, lane, z, (1.8, 1.5, 4.4), rng)
    for _ in range(rng.poisson(1.5)):  # parked cars
        side, z = rng.choice([-1, 1]), log_uniform(rng, 5.0, 60.0)
        add(z, draw_vehicle, CAR, side * (street.road_half - 1.1), z, (1.8, 1.5, 4.4), rng)
    for cls, p, size in (
        (TRUCK, 0.4, (2.5, 3.4, 8.0)),
        (BUS, 0.35, (2.55, 3.2, 12.0)),
        (TRAIN, 0.25, (2.6, 3.5, 28.0)),
    ):
        if rng.random() < p:
            lane = rng.choice([-1, 1]) * street.road_half * rng.uniform(0.3, 0.6)
            z = log_uniform(rng, 8.0, 50.0)
            add(z, draw_vehicle, cls, lane, z, size, rng)
    for cls, rate in ((MOTORCYCLE, 1.4), (BICYCLE, 2.2)):
        for _ in range(rng.poisson(rate)):
            z = log_uniform(rng, 7.0, 90.0)
            x = rng.uniform(-street.road_half, street.road_half - 1.2)
            add(z, draw_two_wheeler, cls, x, z, rng)

    for _, draw in sorted(objects, key=lambda o: -o[0]):
        draw()
    if rng.random() < 0.5:  # a void object ("static") on a sidewalk
        side, z = rng.choice([-1, 1]), log_uniform(rng, 5.0, 40.0)
        x = side * rng.uniform(*walk)
        canvas.polygon(front_quad(cam, x - 0.4, x + 0.4, 0, 0.9, z), VOID, canvas.new_instance())
    if target:  # ego-vehicle hood
        center = (width * 0.5, height * 1.02)
        canvas.ellipse(center, (width * 0.75, height * 0.1), VOID, canvas.new_instance(), HOOD)
    return canvas.label, canvas.instance, canvas.material
