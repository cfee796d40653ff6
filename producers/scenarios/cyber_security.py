"""Security detections: each host has a role (workstation, server, web-facing) that shapes
which threats and detectors fire on it, and a usual outbound volume.

Patterns (each invisible in a single event):
- ``kill_chain``: on one workstation, a phishing mail, then malware calling out, then a
  large outbound transfer flagged by DLP, all within an hour.
- ``ddos_burst``: a flood of DDoS detections on one web-facing host within minutes, the
  number of affected systems rising as it spreads.

Legitimate look-alike (unlabelled): ``incident_response``, the same detections in
another order. Malware is caught and cleaned first, the security team then runs a
phishing drill on the host's user, and the forensic image goes to the response
vendor's server (the drill's sender) as a large upload that DLP flags. Counted over
any window, its detections are the kill chain's; only their order differs.
"""

from __future__ import annotations

import numpy as np

from bankguard.producers.scenarios.base import Event, Pattern, ScenarioGenerator

MINUTE = 60_000
MB = 1_000_000
THREATS = np.array(["phishing", "malware", "ddos", "insider"])
DETECTORS = np.array(["ids", "edr", "email_gateway", "dlp", "waf"])
ROLE_WEIGHTS = [0.75, 0.2, 0.05]  # workstation, server, web-facing
# P(threat | role): mail lands on workstations, floods hit what faces the internet.
THREAT_BY_ROLE = np.array([
    [0.55, 0.25, 0.02, 0.18],
    [0.05, 0.45, 0.2, 0.3],
    [0.03, 0.17, 0.65, 0.15],
])
# P(detector | threat), columns as DETECTORS.
DETECTOR_BY_THREAT = np.array([
    [0.08, 0.02, 0.9, 0.0, 0.0],
    [0.2, 0.8, 0.0, 0.0, 0.0],
    [0.4, 0.0, 0.0, 0.0, 0.6],
    [0.0, 0.15, 0.0, 0.85, 0.0],
])
SEVERITY = np.array([2.4, 3.2, 2.8, 2.6])  # mean background severity per threat
BYTES = np.array([3e3, 2e4, 5e2])  # median bytes out for phishing, malware, ddos
SYSTEMS_P = np.array([0.9, 0.75, 0.35, 0.9])  # geometric p of systems affected
RULES = np.array([
    ["可疑链接邮件", "仿冒发件域名", "宏病毒附件"],
    ["木马回连", "勒索软件行为", "可疑进程注入"],
    ["SYN洪泛", "HTTP洪泛", "UDP反射放大"],
    ["大量外发文件", "敏感数据外传", "异常时段登录"],
])
PHISHING, MALWARE, DDOS, INSIDER = range(4)
THREAT_CUMULATIVE = np.cumsum(THREAT_BY_ROLE, axis=1)
DETECTOR_CUMULATIVE = np.cumsum(DETECTOR_BY_THREAT, axis=1)


def _categorical(cumulative: np.ndarray, u: np.ndarray) -> np.ndarray:
    """One category per row from per-row cumulative probabilities (vectorised choice)."""
    return np.minimum((u[:, None] > cumulative).sum(axis=1), cumulative.shape[1] - 1)


class CyberSecurityGenerator(ScenarioGenerator):
    scenario = "cyber_security"
    code = "cyb"

    def init_entities(self) -> None:
        n, rng = self.n_entities, self.rng
        self.role = rng.choice(3, n, p=ROLE_WEIGHTS)
        self.role[rng.choice(n, 2, replace=False)] = [0, 2]  # at least a desk and a web front
        self.workstations = np.flatnonzero(self.role == 0)
        self.web = np.flatnonzero(self.role == 2)
        self.upload = rng.lognormal(np.log(20 * MB), 1.2, n)  # usual sanctioned upload size
        self.ipv4 = np.array(self.pools.ipv4, dtype=object)

    def _severity(self, threat: np.ndarray) -> np.ndarray:
        """Severity scores as the detectors give them for each threat."""
        return np.round(np.clip(self.rng.gamma(4.0, SEVERITY[threat] / 4.0), 0.1, 10.0), 1)

    def _systems(self, threat: np.ndarray) -> np.ndarray:
        """Systems one detection touches, per threat."""
        return np.minimum(self.rng.geometric(SYSTEMS_P[threat]), 10_000)

    def background(self, entities: np.ndarray, timestamps_ms: np.ndarray) -> list[Event]:
        rng, n, e = self.rng, len(entities), entities
        threat = _categorical(THREAT_CUMULATIVE[self.role[e]], rng.random(n))
        detector = DETECTORS[_categorical(DETECTOR_CUMULATIVE[threat], rng.random(n))]
        severity = self._severity(threat)
        systems = self._systems(threat)
        usual = BYTES[np.minimum(threat, DDOS)]
        bytes_out = np.where(threat == INSIDER, self.upload[e] * rng.lognormal(0.0, 0.8, n),
                             usual * rng.lognormal(0.0, 1.0, n)).astype(np.int64)
        remote = self.ipv4[rng.integers(0, self.pools.size, n)]
        memo = RULES[threat, rng.integers(0, RULES.shape[1], n)]
        return [
            {
                "threat_type": t, "detector": d, "severity_score": s, "systems_affected": k,
                "bytes_out": b, "counterparty": r, "memo": m,
            }
            for t, d, s, k, b, r, m in zip(
                THREATS[threat].tolist(), detector.tolist(), severity.tolist(), systems.tolist(),
                bytes_out.tolist(), remote.tolist(), memo.tolist(), strict=True,
            )
        ]

    def _detection(self, threat: int, detector: str, severity: float, remote: str,
                   bytes_out: int, systems: int = 1) -> Event:
        """One pattern alert, with the same fields and rule names a background alert has."""
        return {
            "threat_type": str(THREATS[threat]), "detector": detector,
            "severity_score": round(float(np.clip(severity, 0.1, 10.0)), 1),
            "systems_affected": int(systems), "bytes_out": int(bytes_out), "counterparty": remote,
            "memo": str(RULES[threat, int(self.rng.integers(0, RULES.shape[1]))]),
        }

    def _remote(self) -> str:
        return self.ipv4[int(self.rng.integers(0, self.pools.size))]

    def _kill_chain(self, entity: int, t0: int) -> list[tuple[int, Event]]:
        """Each step is a routine mid-severity alert; the order on one host is the story."""
        return self._chain(entity, attack=True)

    def _incident_response(self, entity: int, t0: int) -> list[tuple[int, Event]]:
        """The kill chain's detections, malware first: a cleanup, not an attack."""
        return self._chain(entity, attack=False)

    def _chain(self, entity: int, attack: bool) -> list[tuple[int, Event]]:
        """Phishing, malware (its beacon on the wire half the time) and a large DLP-flagged
        upload within the hour, at the same offsets and with the same fields either way.
        An attack starts with the phishing and exfiltrates to its C2; a response starts with
        the malware and uploads to the vendor that sent the drill."""
        rng = self.rng
        host = entity if self.role[entity] == 0 else int(rng.choice(self.workstations))
        c2, lure = self._remote(), self._remote()
        severity = self._severity(np.array([PHISHING, MALWARE, MALWARE, INSIDER])).tolist()
        phish = self._detection(PHISHING, "email_gateway", severity[0], lure,
                                int(BYTES[PHISHING] * rng.lognormal(0.0, 1.0)))
        malware = self._detection(MALWARE, "edr", severity[1], c2, int(BYTES[MALWARE] * rng.lognormal(0.0, 1.0)))
        infect = int(rng.integers(3 * MINUTE, 15 * MINUTE))
        steps = [(0, phish), (infect, malware)] if attack else [(0, malware), (infect, phish)]
        if rng.random() < 0.5:  # the beacon is also seen on the wire
            steps.append((infect + int(rng.integers(MINUTE, 8 * MINUTE)), self._detection(
                MALWARE, "ids", severity[2], c2, int(BYTES[MALWARE] * rng.lognormal(0.0, 1.0)))))
        # Tens of times the host's habit, yet no bigger than the estate's own large backups.
        upload = np.clip(self.upload[host] * rng.uniform(20, 50), 150 * MB, 1_200 * MB)
        steps.append((int(rng.integers(30 * MINUTE, 58 * MINUTE)), self._detection(
            INSIDER, "dlp", severity[3], c2 if attack else lure, int(upload))))
        return [(offset, {**fields, "_entity": host}) for offset, fields in steps]

    def _ddos_burst(self, entity: int, t0: int) -> list[tuple[int, Event]]:
        """Many alerts from many sources; the affected count and severity only ever grow.
        Each alert's values are drawn as a routine DDoS alert's are, then put in order: the
        rise within minutes is the tell, not any one alert."""
        rng = self.rng
        host = int(rng.choice(self.web))
        count = int(rng.integers(12, 31))
        offsets = np.sort(rng.integers(0, int(rng.uniform(2, 8) * MINUTE), count))
        threat = np.full(count, DDOS)
        systems, severity = np.sort(self._systems(threat)), np.sort(self._severity(threat))
        detectors = DETECTORS[_categorical(DETECTOR_CUMULATIVE[threat], rng.random(count))]
        return [
            (offset, {**self._detection(DDOS, d, s, self._remote(),
                                        int(BYTES[DDOS] * rng.lognormal(0.0, 1.0)), k), "_entity": host})
            for offset, k, s, d in zip(offsets.tolist(), systems.tolist(), severity.tolist(),
                                       detectors.tolist(), strict=True)
        ]

    def patterns(self) -> list[Pattern]:
        return [
            Pattern("kill_chain", 0.002, self._kill_chain,
                    "phishing, malware, then a large exfiltration on one host within an hour"),
            Pattern("ddos_burst", 0.0005, self._ddos_burst,
                    "a flood of DDoS alerts on one web host, affected systems rising"),
            Pattern("incident_response", 0.003, self._incident_response,
                    "malware cleaned, a phishing drill, a forensic upload: legitimate", benign=True),
        ]
