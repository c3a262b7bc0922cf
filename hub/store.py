"""LearnHub's tables in the platform database: LTI registrations, nonces, states, keys."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    delete,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from .db import Base, engine_for, ensure_schema
from .keys import store_key


class Consumer(Base):
    """An LTI 1.1 tool consumer: a key and its (encrypted) shared secret."""

    __tablename__ = "learnhub_lti11_consumers"
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    secret_enc: Mapped[str] = mapped_column(Text)
    frame_origin: Mapped[str | None] = mapped_column(String(255))
    created: Mapped[float] = mapped_column(Float, default=time.time)


# A nonce is kept for this many timestamp windows past its timestamp: one for the window
# itself, one for clocks of other hub processes (or of this one, later) that run ahead.
NONCE_RETENTION_WINDOWS = 2


class Nonce(Base):
    """An LTI 1.1 nonce seen within the timestamp window (older ones are purged)."""

    __tablename__ = "learnhub_lti11_nonces"
    consumer_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(255), primary_key=True)
    timestamp: Mapped[float] = mapped_column(Float, index=True)


class Platform(Base):
    """An LTI 1.3 platform registration (issuer + client id) and its endpoints."""

    __tablename__ = "learnhub_lti13_platforms"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issuer: Mapped[str] = mapped_column(String(255))
    client_id: Mapped[str] = mapped_column(String(255))
    auth_url: Mapped[str] = mapped_column(Text)
    jwks_url: Mapped[str] = mapped_column(Text)
    token_url: Mapped[str] = mapped_column(Text)
    frame_origin: Mapped[str | None] = mapped_column(String(255))
    created: Mapped[float] = mapped_column(Float, default=time.time)
    deployments: Mapped[list[Deployment]] = relationship(
        back_populates="platform", cascade="all, delete-orphan", lazy="selectin"
    )

    @property
    def deployment_ids(self) -> list[str]:
        return sorted(d.deployment_id for d in self.deployments)


class Deployment(Base):
    """A deployment id under which a platform may launch the tool."""

    __tablename__ = "learnhub_lti13_deployments"
    platform_id: Mapped[int] = mapped_column(
        ForeignKey("learnhub_lti13_platforms.id", ondelete="CASCADE"), primary_key=True
    )
    deployment_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    platform: Mapped[Platform] = relationship(back_populates="deployments")


class LoginState(Base):
    """A one-time OIDC login state kept server-side, so a launch needs no cookie."""

    __tablename__ = "learnhub_lti13_login_states"
    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    platform_id: Mapped[int] = mapped_column(
        ForeignKey("learnhub_lti13_platforms.id", ondelete="CASCADE")
    )
    nonce: Mapped[str] = mapped_column(String(255))
    target_link_uri: Mapped[str] = mapped_column(Text)
    storage_target: Mapped[str | None] = mapped_column(String(255))
    expires: Mapped[float] = mapped_column(Float, index=True)


class RegistrationKey(Base):
    """A one-time secret that lets an LMS administrator register a platform by URL
    (`learnhub lti registration-url`): kept hashed, spent by the registration it allows."""

    __tablename__ = "learnhub_lti13_registration_keys"
    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Who made it, as the command line was told (shown on the registration page).
    made_by: Mapped[str] = mapped_column(String(255))
    created: Mapped[float] = mapped_column(Float)
    expires: Mapped[float] = mapped_column(Float, index=True)


class SpentValue(Base):
    """A one-time value already used (hashed), kept until it could no longer be used anyway:
    a deep-linking picker's sealed state, once its answer went to the LMS."""

    __tablename__ = "learnhub_spent_values"
    value_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires: Mapped[float] = mapped_column(Float, index=True)


class ToolKey(Base):
    """One of the tool's RSA signing keys; the newest unretired one signs."""

    __tablename__ = "learnhub_tool_keys"
    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    private_pem_enc: Mapped[str] = mapped_column(Text)
    created: Mapped[float] = mapped_column(Float)
    retired: Mapped[float | None] = mapped_column(Float)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class CourseRecord(Base):
    """An LMS context LearnHub has seen a launch from; its nbgrader course has the same id."""

    __tablename__ = "learnhub_courses"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    platform: Mapped[str] = mapped_column(String(255))
    context_id: Mapped[str] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(Text)
    created: Mapped[float] = mapped_column(Float)
    last_launch: Mapped[float] = mapped_column(Float, index=True)


class Enrollment(Base):
    """One person in one course: role, when they last came, and what grade passback needs.

    Name and email are kept (encrypted) only when the platform sent them; the launch
    data (outcome service, AGS endpoint, deployment) is encrypted too.
    """

    __tablename__ = "learnhub_enrollments"
    course_id: Mapped[str] = mapped_column(
        ForeignKey("learnhub_courses.id", ondelete="CASCADE"), primary_key=True
    )
    username: Mapped[str] = mapped_column(String(255), primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(32))
    lti_version: Mapped[str] = mapped_column(String(8))
    platform: Mapped[str] = mapped_column(String(255))
    launch_enc: Mapped[str] = mapped_column(Text)
    name_enc: Mapped[str | None] = mapped_column(Text)
    email_enc: Mapped[str | None] = mapped_column(Text)
    first_launch: Mapped[float] = mapped_column(Float)
    last_launch: Mapped[float] = mapped_column(Float, index=True)

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES


# The key of an enrollment's stored launch that keeps the launch of each link (EnrollmentInfo).
LINKS = "links"
# Roles that may open a course's formgrader and act for the course in the exchange.
STAFF_ROLES = frozenset({"instructor", "ta"})
# The role an enrollment records when a launch carries several: the most privileged.
ROLE_ORDER = ("instructor", "ta", "developer", "learner")


def principal_role(roles) -> str:
    names = {str(r) for r in roles}
    return next((r for r in ROLE_ORDER if r in names), "learner")


@dataclass(frozen=True)
class EnrollmentInfo:
    """An enrollment with its encrypted fields opened."""

    course_id: str
    username: str
    role: str
    lti_version: str
    platform: str
    launch: dict
    name: str | None
    email: str | None
    first_launch: float
    last_launch: float
    # The latest launch of each link this person opened, by the assignment the link names
    # ("" for a link that names none): where each assignment's grade goes (passback.targets).
    links: dict[str, dict] = field(default_factory=dict)

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES


class Cipher:
    """Authenticated encryption of stored secrets with a key derived from the crypt key."""

    def __init__(self, crypt_key: bytes):
        self._fernet = Fernet(base64.urlsafe_b64encode(store_key(crypt_key)))

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise ValueError(
                "a stored secret cannot be decrypted: LEARNHUB_CRYPT_KEY differs from the "
                "key it was stored with"
            ) from None


def hash_state(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


@dataclass(frozen=True)
class ConsumerInfo:
    key: str
    secret: str
    frame_origin: str | None


class Store:
    """Every read and write of LearnHub's own tables goes through here."""

    def __init__(self, url: str, crypt_key: bytes):
        # The process's one engine for the URL; its schema checked (or made) once, not per Store.
        self.engine = engine_for(url)
        ensure_schema(self.engine)
        self.cipher = Cipher(crypt_key)

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    # LTI 1.1 consumers

    def add_consumer(self, key: str, secret: str, frame_origin: str | None = None) -> None:
        with self.session() as s:
            if s.get(Consumer, key) is not None:
                raise ValueError(f"consumer key {key!r} already exists")
            s.add(
                Consumer(key=key, secret_enc=self.cipher.encrypt(secret), frame_origin=frame_origin)
            )
            s.commit()

    def get_consumer(self, key: str) -> ConsumerInfo | None:
        with self.session() as s:
            row = s.get(Consumer, key)
            if row is None:
                return None
            return ConsumerInfo(row.key, self.cipher.decrypt(row.secret_enc), row.frame_origin)

    def list_consumers(self) -> list[Consumer]:
        with self.session() as s:
            return list(s.scalars(select(Consumer).order_by(Consumer.key)))

    def remove_consumer(self, key: str) -> bool:
        with self.session() as s:
            s.execute(delete(Nonce).where(Nonce.consumer_key == key))
            removed = s.execute(delete(Consumer).where(Consumer.key == key)).rowcount
            s.commit()
            return bool(removed)

    def use_nonce(
        self, consumer_key: str, nonce: str, timestamp: float, *, now: float, window: float
    ) -> bool:
        """Record a nonce; False if it was already used. Purges nonces no clock can accept.

        `now` is the clock reading the caller checked `timestamp` against: the store reads no
        clock of its own, so the purge can never drop a nonce the caller just accepted. A
        timestamp is accepted while it is within `window` of a hub process's clock, and those
        clocks may differ from this one by up to `window` too, so a nonce is kept for twice
        the window (see NONCE_RETENTION_WINDOWS).
        """
        horizon = now - NONCE_RETENTION_WINDOWS * window
        with self.session() as s:
            s.execute(delete(Nonce).where(Nonce.timestamp < horizon))
            s.add(Nonce(consumer_key=consumer_key, nonce=nonce, timestamp=timestamp))
            try:
                s.commit()
            except IntegrityError:
                s.rollback()
                return False
            return True

    def count_nonces(self) -> int:
        with self.session() as s:
            return len(s.scalars(select(Nonce.nonce)).all())

    # LTI 1.3 platforms

    def add_platform(
        self,
        *,
        issuer: str,
        client_id: str,
        deployment_ids: Iterable[str],
        auth_url: str,
        jwks_url: str,
        token_url: str,
        frame_origin: str | None = None,
    ) -> Platform:
        with self.session() as s:
            existing = s.scalars(
                select(Platform).where(Platform.issuer == issuer, Platform.client_id == client_id)
            ).first()
            if existing is not None:
                raise ValueError(f"platform {issuer} with client id {client_id} already exists")
            platform = Platform(
                issuer=issuer,
                client_id=client_id,
                auth_url=auth_url,
                jwks_url=jwks_url,
                token_url=token_url,
                frame_origin=frame_origin,
            )
            platform.deployments = [
                Deployment(deployment_id=d) for d in sorted(set(deployment_ids))
            ]
            s.add(platform)
            s.commit()
            return platform

    def add_deployment(self, platform_id: int, deployment_id: str) -> None:
        with self.session() as s:
            s.merge(Deployment(platform_id=platform_id, deployment_id=deployment_id))
            s.commit()

    def find_platforms(self, issuer: str, client_id: str | None = None) -> list[Platform]:
        with self.session() as s:
            query = select(Platform).where(Platform.issuer == issuer)
            if client_id:
                query = query.where(Platform.client_id == client_id)
            return list(s.scalars(query))

    def get_platform(self, platform_id: int) -> Platform | None:
        with self.session() as s:
            return s.get(Platform, platform_id)

    def list_platforms(self) -> list[Platform]:
        with self.session() as s:
            return list(s.scalars(select(Platform).order_by(Platform.id)))

    def remove_platform(self, platform_id: int) -> bool:
        with self.session() as s:
            row = s.get(Platform, platform_id)
            if row is None:
                return False
            s.execute(delete(LoginState).where(LoginState.platform_id == platform_id))
            s.delete(row)
            s.commit()
            return True

    def frame_origins(self) -> list[str]:
        """Origins of every registered platform and consumer that may frame the tool."""
        with self.session() as s:
            origins = set(s.scalars(select(Platform.frame_origin)))
            origins |= set(s.scalars(select(Consumer.frame_origin)))
        return sorted(o for o in origins if o)

    # LTI 1.3 login states

    def save_login_state(
        self,
        state: str,
        *,
        platform_id: int,
        nonce: str,
        target_link_uri: str,
        storage_target: str | None,
        lifetime: float,
    ) -> None:
        now = time.time()
        with self.session() as s:
            s.execute(delete(LoginState).where(LoginState.expires < now))
            s.add(
                LoginState(
                    state_hash=hash_state(state),
                    platform_id=platform_id,
                    nonce=nonce,
                    target_link_uri=target_link_uri,
                    storage_target=storage_target,
                    expires=now + lifetime,
                )
            )
            s.commit()

    def peek_login_state(self, state: str) -> LoginState | None:
        """The unexpired state, without consuming it."""
        return self._unexpired(LoginState, hash_state(state))

    def consume_login_state(self, state: str) -> LoginState | None:
        """Delete and return the state; None if unknown, expired or already used.

        The DELETE's row count decides, so two concurrent launches with one state
        cannot both succeed, even across hub processes.
        """
        return self._take_once(LoginState, hash_state(state))

    def _unexpired(self, model, key_hash: str):
        """`model`'s row keyed `key_hash`, unless there is none or it has expired."""
        with self.session() as s:
            row = s.get(model, key_hash)
            return row if row is not None and row.expires >= time.time() else None

    def _take_once(self, model, key_hash: str):
        """Delete and return `model`'s unexpired row keyed `key_hash`; None if there is none
        or another caller took it first (the DELETE's row count decides)."""
        (key,) = model.__mapper__.primary_key
        with self.session() as s:
            row = s.get(model, key_hash)
            if row is None:
                return None
            deleted = s.execute(delete(model).where(key == key_hash)).rowcount
            s.commit()
            if deleted != 1 or row.expires < time.time():
                return None
            return row

    # one-time values

    def spend(self, value: str, *, until: float) -> bool:
        """Record `value` as used until `until`; False if it was used already. Values past
        their time are dropped."""
        with self.session() as s:
            s.execute(delete(SpentValue).where(SpentValue.expires < time.time()))
            s.add(SpentValue(value_hash=hash_state(value), expires=until))
            try:
                s.commit()
            except IntegrityError:
                s.rollback()
                return False
            return True

    # LTI 1.3 registration keys

    def add_registration_key(self, secret: str, *, made_by: str, lifetime: float) -> float:
        """Keep `secret` (hashed) for one registration within `lifetime`; returns its expiry.
        Expired keys are dropped."""
        now = time.time()
        with self.session() as s:
            s.execute(delete(RegistrationKey).where(RegistrationKey.expires < now))
            s.add(
                RegistrationKey(
                    key_hash=hash_state(secret), made_by=made_by, created=now,
                    expires=now + lifetime,
                )
            )  # fmt: skip
            s.commit()
        return now + lifetime

    def peek_registration_key(self, secret: str) -> RegistrationKey | None:
        """The unexpired key, without spending it."""
        return self._unexpired(RegistrationKey, hash_state(secret))

    def spend_registration_key(self, secret: str) -> RegistrationKey | None:
        """Delete and return the key; None if unknown, expired or already spent. As with
        login states, the DELETE's row count decides between two concurrent registrations."""
        return self._take_once(RegistrationKey, hash_state(secret))

    def restore_registration_key(self, key: RegistrationKey) -> None:
        """Give back a key whose registration failed (the LMS refused it, or was down), so
        the administrator can try again with the same URL until it expires."""
        with self.session() as s:
            s.merge(
                RegistrationKey(
                    key_hash=key.key_hash, made_by=key.made_by, created=key.created,
                    expires=key.expires,
                )
            )  # fmt: skip
            s.commit()

    # tool keys

    def tool_keys(self) -> list[ToolKey]:
        with self.session() as s:
            return list(s.scalars(select(ToolKey).order_by(ToolKey.created.desc())))

    def add_tool_key(self, kid: str, private_pem: str) -> None:
        now = time.time()
        with self.session() as s:
            for key in s.scalars(select(ToolKey).where(ToolKey.active.is_(True))):
                key.active = False
                key.retired = now
            s.add(
                ToolKey(
                    kid=kid,
                    private_pem_enc=self.cipher.encrypt(private_pem),
                    created=now,
                    active=True,
                )
            )
            s.commit()

    # courses and enrollments

    def record_launch(
        self,
        *,
        username: str,
        course_id: str,
        platform: str,
        context_id: str,
        title: str,
        role: str,
        lti_version: str,
        launch: dict,
        name: str | None,
        email: str | None,
        now: float | None = None,
        assignment: str | None = None,
    ) -> bool:
        """Upsert the course and the enrollment of a launch; True when the course is new.

        `assignment` is what the launch's link names (None: a link naming none); the launch
        is kept as that link's, beside those of the other links this person opened.
        """
        now = time.time() if now is None else now
        with self.session() as s:
            course = s.get(CourseRecord, course_id)
            created = course is None
            if created:
                course = CourseRecord(
                    id=course_id, platform=platform, context_id=context_id, created=now
                )
                s.add(course)
            course.title = title
            course.last_launch = now
            row = s.get(Enrollment, (course_id, username), with_for_update=True)
            links = {}
            if row is None:
                row = Enrollment(course_id=course_id, username=username, first_launch=now)
                s.add(row)
            else:
                links = self._launches(row)[1]
            if row.lti_version != lti_version:
                # Another LTI version's links cannot carry this one's grades.
                links = {}
            links[assignment or ""] = {k: v for k, v in launch.items() if k != LINKS}
            row.role = role
            row.lti_version = lti_version
            row.platform = platform
            stored = {**launch, LINKS: links}
            row.launch_enc = self.cipher.encrypt(json.dumps(stored, sort_keys=True))
            # A launch without name or email leaves no stale copy behind.
            row.name_enc = self.cipher.encrypt(name) if name else None
            row.email_enc = self.cipher.encrypt(email) if email else None
            row.last_launch = now
            try:
                s.commit()
            except IntegrityError:
                # Two first launches of one course at once: the other one created it.
                s.rollback()
                return self.record_launch(
                    username=username, course_id=course_id, platform=platform,
                    context_id=context_id, title=title, role=role, lti_version=lti_version,
                    launch=launch, name=name, email=email, now=now, assignment=assignment,
                )  # fmt: skip
            return created

    def add_roster_member(
        self, *, course_id: str, username: str, role: str, platform: str,
        name: str | None, email: str | None, now: float | None = None,
    ) -> bool:  # fmt: skip
        """Enrol someone the LMS's roster lists before their first launch; True when added.

        An existing enrollment is left as it is: its launches say more than the roster. The
        enrollment holds no launch (nothing to send grades with) until they launch.
        """
        now = time.time() if now is None else now
        with self.session() as s:
            if (
                s.get(CourseRecord, course_id) is None
                or s.get(Enrollment, (course_id, username)) is not None
            ):
                return False
            s.add(
                Enrollment(
                    course_id=course_id, username=username, role=role, lti_version="1.3",
                    platform=platform,
                    launch_enc=self.cipher.encrypt(json.dumps({LINKS: {}})),
                    name_enc=self.cipher.encrypt(name) if name else None,
                    email_enc=self.cipher.encrypt(email) if email else None,
                    first_launch=now, last_launch=now,
                )
            )  # fmt: skip
            try:
                s.commit()
            except IntegrityError:
                # Their first launch enrolled them meanwhile.
                s.rollback()
                return False
            return True

    def _launches(self, row: Enrollment) -> tuple[dict, dict[str, dict]]:
        """An enrollment's latest launch, and the latest launch of each of its links."""
        launch = json.loads(self.cipher.decrypt(row.launch_enc))
        links = launch.pop(LINKS, None)
        # An enrollment recorded before links were kept: its launch is the course's link.
        return launch, links if isinstance(links, dict) else {"": launch}

    def _open(self, row: Enrollment) -> EnrollmentInfo:
        launch, links = self._launches(row)
        return EnrollmentInfo(
            course_id=row.course_id,
            username=row.username,
            role=row.role,
            lti_version=row.lti_version,
            platform=row.platform,
            launch=launch,
            links=links,
            name=self.cipher.decrypt(row.name_enc) if row.name_enc else None,
            email=self.cipher.decrypt(row.email_enc) if row.email_enc else None,
            first_launch=row.first_launch,
            last_launch=row.last_launch,
        )

    def enrollment(self, username: str, course_id: str) -> EnrollmentInfo | None:
        with self.session() as s:
            row = s.get(Enrollment, (course_id, username))
            return self._open(row) if row else None

    def enrollments_of(self, username: str) -> list[EnrollmentInfo]:
        with self.session() as s:
            rows = s.scalars(
                select(Enrollment)
                .where(Enrollment.username == username)
                .order_by(Enrollment.course_id)
            )
            return [self._open(r) for r in rows]

    def enrollments_in(self, course_id: str) -> list[EnrollmentInfo]:
        with self.session() as s:
            rows = s.scalars(
                select(Enrollment)
                .where(Enrollment.course_id == course_id)
                .order_by(Enrollment.username)
            )
            return [self._open(r) for r in rows]

    def course(self, course_id: str) -> CourseRecord | None:
        with self.session() as s:
            return s.get(CourseRecord, course_id)

    def courses(self) -> list[CourseRecord]:
        with self.session() as s:
            return list(s.scalars(select(CourseRecord).order_by(CourseRecord.id)))

    def remove_enrollment(self, username: str, course_id: str) -> bool:
        with self.session() as s:
            removed = s.execute(
                delete(Enrollment).where(
                    Enrollment.username == username, Enrollment.course_id == course_id
                )
            ).rowcount
            s.commit()
            return removed == 1

    def drop_retired_keys(self, older_than: float) -> int:
        with self.session() as s:
            dropped = s.execute(
                delete(ToolKey).where(ToolKey.retired.is_not(None), ToolKey.retired < older_than)
            ).rowcount
            s.commit()
            return dropped
