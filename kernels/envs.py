"""Control environments compiled with Numba, with Gymnasium's semantics and dynamics.

Each environment is three small functions over a float64 state array (``STATE_SIZE`` slots: the physical
state, then the number of steps taken in the episode, which drives truncation as Gymnasium's ``TimeLimit``
wrapper does):

* ``reset(state, rng)``: a fresh episode, drawn from Gymnasium's reset distribution with the worker's
  xorshift stream (`hogwild.kernels.xorshift`), not Gymnasium's generator: same distribution, other numbers.
* ``observe(state, obs)``: the observation Gymnasium returns, rounded to float32 as Gymnasium's is, then stored
  in ``obs`` (whatever its float type).
* ``step(state, action, max_steps)``: one step in place; returns ``(reward, terminated, truncated)``.
  ``terminated`` is the task's own end (the pole fell, the tip swung up); ``truncated`` is the time limit
  (``max_steps`` steps; 0 for none). Both may be true at once, as in Gymnasium.

The arithmetic copies Gymnasium 1.x expression by expression (``gymnasium/envs/classic_control``), so a step
from the same state and action agrees to the last few ulps (``tests/test_rl_envs.py`` checks it against
Gymnasium itself). CartPole-v1 is the explicit Euler integrator of Barto, Sutton & Anderson (1983); Acrobot-v1
is one fourth-order Runge-Kutta step of the "book" dynamics (Sutton & Barto) with angles wrapped to [-pi, pi]
and velocities bounded.

Environments are variants chosen by a named code (`CARTPOLE`, `ACROBOT`) that the worker kernels pass to
`env_reset`/`env_observe`/`env_step`, so one compiled worker serves every environment.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .rl_options import JIT_OPTIONS
from .xorshift import next_uniform

CARTPOLE = 0
ACROBOT = 1

STATE_SIZE = 5  # four physical values, then the step counter
_STEPS = 4

@njit(**JIT_OPTIONS)
def float32_round(value):
    """``value`` rounded to the nearest float32 (Gymnasium's observations and Acrobot's reset state are float32)."""
    return float(np.float32(value))


# --- CartPole-v1 -------------------------------------------------------------------------------------------
_CP_GRAVITY = 9.8
_CP_MASSCART = 1.0
_CP_MASSPOLE = 0.1
_CP_TOTAL_MASS = _CP_MASSPOLE + _CP_MASSCART
_CP_LENGTH = 0.5  # half the pole's length
_CP_POLEMASS_LENGTH = _CP_MASSPOLE * _CP_LENGTH
_CP_FORCE_MAG = 10.0
_CP_TAU = 0.02
_CP_THETA_THRESHOLD = 12 * 2 * math.pi / 360
_CP_X_THRESHOLD = 2.4
_CP_RESET_BOUND = 0.05


@njit(**JIT_OPTIONS)
def cartpole_reset(state, rng):
    for i in range(4):
        state[i] = -_CP_RESET_BOUND + (2.0 * _CP_RESET_BOUND) * next_uniform(rng)
    state[_STEPS] = 0.0


@njit(**JIT_OPTIONS)
def cartpole_observe(state, obs):
    for i in range(4):
        obs[i] = float32_round(state[i])


@njit(**JIT_OPTIONS)
def cartpole_step(state, action, max_steps):
    x, x_dot, theta, theta_dot = state[0], state[1], state[2], state[3]
    force = _CP_FORCE_MAG if action == 1 else -_CP_FORCE_MAG
    costheta = math.cos(theta)
    sintheta = math.sin(theta)
    temp = (force + _CP_POLEMASS_LENGTH * (theta_dot * theta_dot) * sintheta) / _CP_TOTAL_MASS
    thetaacc = (_CP_GRAVITY * sintheta - costheta * temp) / (
        _CP_LENGTH * (4.0 / 3.0 - _CP_MASSPOLE * (costheta * costheta) / _CP_TOTAL_MASS)
    )
    xacc = temp - _CP_POLEMASS_LENGTH * thetaacc * costheta / _CP_TOTAL_MASS
    # explicit Euler, Gymnasium's default kinematics_integrator
    x = x + _CP_TAU * x_dot
    x_dot = x_dot + _CP_TAU * xacc
    theta = theta + _CP_TAU * theta_dot
    theta_dot = theta_dot + _CP_TAU * thetaacc
    state[0], state[1], state[2], state[3] = x, x_dot, theta, theta_dot
    state[_STEPS] += 1.0
    terminated = x < -_CP_X_THRESHOLD or x > _CP_X_THRESHOLD or theta < -_CP_THETA_THRESHOLD or theta > _CP_THETA_THRESHOLD
    truncated = max_steps > 0 and state[_STEPS] >= max_steps
    return 1.0, terminated, truncated  # +1 for every step, the terminating one included


# --- Acrobot-v1 --------------------------------------------------------------------------------------------
_AB_DT = 0.2
_AB_LINK_LENGTH_1 = 1.0
_AB_LINK_MASS_1 = 1.0
_AB_LINK_MASS_2 = 1.0
_AB_LINK_COM_POS_1 = 0.5
_AB_LINK_COM_POS_2 = 0.5
_AB_LINK_MOI = 1.0
_AB_MAX_VEL_1 = 4 * math.pi
_AB_MAX_VEL_2 = 9 * math.pi
_AB_RESET_BOUND = 0.1


@njit(**JIT_OPTIONS)
def acrobot_reset(state, rng):
    for i in range(4):
        state[i] = float32_round(-_AB_RESET_BOUND + (2.0 * _AB_RESET_BOUND) * next_uniform(rng))
    state[_STEPS] = 0.0


@njit(**JIT_OPTIONS)
def acrobot_observe(state, obs):
    obs[0] = float32_round(math.cos(state[0]))
    obs[1] = float32_round(math.sin(state[0]))
    obs[2] = float32_round(math.cos(state[1]))
    obs[3] = float32_round(math.sin(state[1]))
    obs[4] = float32_round(state[2])
    obs[5] = float32_round(state[3])


@njit(**JIT_OPTIONS)
def _acrobot_derivatives(theta1, theta2, dtheta1, dtheta2, a):
    """Gymnasium's ``AcrobotEnv._dsdt`` ("book" dynamics): ``(dtheta1, dtheta2, ddtheta1, ddtheta2)``."""
    m1 = _AB_LINK_MASS_1
    m2 = _AB_LINK_MASS_2
    l1 = _AB_LINK_LENGTH_1
    lc1 = _AB_LINK_COM_POS_1
    lc2 = _AB_LINK_COM_POS_2
    I1 = _AB_LINK_MOI
    I2 = _AB_LINK_MOI
    g = 9.8
    d1 = m1 * lc1**2 + m2 * (l1**2 + lc2**2 + 2 * l1 * lc2 * math.cos(theta2)) + I1 + I2
    d2 = m2 * (lc2**2 + l1 * lc2 * math.cos(theta2)) + I2
    phi2 = m2 * lc2 * g * math.cos(theta1 + theta2 - math.pi / 2.0)
    phi1 = (
        -m2 * l1 * lc2 * (dtheta2 * dtheta2) * math.sin(theta2)
        - 2 * m2 * l1 * lc2 * dtheta2 * dtheta1 * math.sin(theta2)
        + (m1 * lc1 + m2 * l1) * g * math.cos(theta1 - math.pi / 2)
        + phi2
    )
    ddtheta2 = (a + d2 / d1 * phi1 - m2 * l1 * lc2 * (dtheta1 * dtheta1) * math.sin(theta2) - phi2) / (
        m2 * lc2**2 + I2 - d2**2 / d1
    )
    ddtheta1 = -(d2 * ddtheta2 + phi1) / d1
    return dtheta1, dtheta2, ddtheta1, ddtheta2


@njit(**JIT_OPTIONS)
def _wrap(x, low, high):
    diff = high - low
    while x > high:
        x = x - diff
    while x < low:
        x = x + diff
    return x


@njit(**JIT_OPTIONS)
def _bound(x, low, high):
    return min(max(x, low), high)


@njit(**JIT_OPTIONS)
def acrobot_step(state, action, max_steps):
    torque = float(action) - 1.0  # actions 0, 1, 2 -> torques -1, 0, +1
    y0, y1, y2, y3 = state[0], state[1], state[2], state[3]
    dt = _AB_DT
    dt2 = dt / 2.0
    # one classical Runge-Kutta step over [0, dt], in Gymnasium's `rk4` order of operations
    k1_0, k1_1, k1_2, k1_3 = _acrobot_derivatives(y0, y1, y2, y3, torque)
    k2_0, k2_1, k2_2, k2_3 = _acrobot_derivatives(
        y0 + dt2 * k1_0, y1 + dt2 * k1_1, y2 + dt2 * k1_2, y3 + dt2 * k1_3, torque
    )
    k3_0, k3_1, k3_2, k3_3 = _acrobot_derivatives(
        y0 + dt2 * k2_0, y1 + dt2 * k2_1, y2 + dt2 * k2_2, y3 + dt2 * k2_3, torque
    )
    k4_0, k4_1, k4_2, k4_3 = _acrobot_derivatives(
        y0 + dt * k3_0, y1 + dt * k3_1, y2 + dt * k3_2, y3 + dt * k3_3, torque
    )
    sixth = dt / 6.0
    n0 = y0 + sixth * (k1_0 + 2 * k2_0 + 2 * k3_0 + k4_0)
    n1 = y1 + sixth * (k1_1 + 2 * k2_1 + 2 * k3_1 + k4_1)
    n2 = y2 + sixth * (k1_2 + 2 * k2_2 + 2 * k3_2 + k4_2)
    n3 = y3 + sixth * (k1_3 + 2 * k2_3 + 2 * k3_3 + k4_3)
    state[0] = _wrap(n0, -math.pi, math.pi)
    state[1] = _wrap(n1, -math.pi, math.pi)
    state[2] = _bound(n2, -_AB_MAX_VEL_1, _AB_MAX_VEL_1)
    state[3] = _bound(n3, -_AB_MAX_VEL_2, _AB_MAX_VEL_2)
    state[_STEPS] += 1.0
    terminated = -math.cos(state[0]) - math.cos(state[1] + state[0]) > 1.0
    truncated = max_steps > 0 and state[_STEPS] >= max_steps
    return (0.0 if terminated else -1.0), terminated, truncated


# --- dispatch by code ----------------------------------------------------------------------------------------
@njit(**JIT_OPTIONS)
def env_reset(code, state, rng):
    """Start a new episode of environment ``code`` in ``state``."""
    if code == CARTPOLE:
        cartpole_reset(state, rng)
    else:
        acrobot_reset(state, rng)


@njit(**JIT_OPTIONS)
def env_observe(code, state, obs):
    """Write environment ``code``'s observation of ``state`` into ``obs``."""
    if code == CARTPOLE:
        cartpole_observe(state, obs)
    else:
        acrobot_observe(state, obs)


@njit(**JIT_OPTIONS)
def env_step(code, state, action, max_steps):
    """One step of environment ``code``: ``(reward, terminated, truncated)``; ``state`` is updated in place."""
    if code == CARTPOLE:
        return cartpole_step(state, action, max_steps)
    return acrobot_step(state, action, max_steps)
