# Type stubs of the careledger package: the public API of the uniffi-generated
# module bindings/python/careledger.py. Generated from it by
# bindings/package/python/make_stubs.py; do not edit, run
# `bash bindings/generate.sh`. Checked against the installed wheel by mypy's
# stubtest (tests/packages/python.sh).

import builtins
import enum
import typing

__all__ = [
    "InternalError",
    "Prediction",
    "Purpose",
    "AuditRecord",
    "ConsentStatus",
    "Grantee",
    "ConsentSource",
    "MessageKind",
    "RuleDecision",
    "ModelMetrics",
    "VerifyStep",
    "ApiError",
    "EndorsementTarget",
    "ExportFormat",
    "ModelKind",
    "PredictInput",
    "Activation",
    "Decision",
    "AuditEntry",
    "Consent",
    "PatientConsent",
    "ChartConsents",
    "EraseReport",
    "ErasedChart",
    "FlPolicy",
    "FlStep",
    "FlTask",
    "GranteeExport",
    "ImportReport",
    "LedgerReport",
    "MemberInfo",
    "MembershipProofBytes",
    "NetworkInfo",
    "OutcomeVerification",
    "OutgoingMessage",
    "ReceiveReport",
    "ResourceRef",
    "RoundVerification",
    "RuleOutcome",
    "RuleSetAdded",
    "RuleSetInfo",
    "RulesActivity",
    "ShareReport",
    "SiteBudget",
    "StoreAudit",
    "SyncReport",
    "TickReport",
    "TrainResult",
    "Verification",
    "model_card_dataset_commitment",
    "verify_membership",
    "Network",
    "NetworkProtocol",
    "Node",
    "NodeProtocol",
]

class InternalError(Exception):
    ...

class Prediction:
    """What a model said."""
    class CLASSIFICATION(Prediction):
        """A classifier's answer."""
        predicted_class: int
        positive_probability: float
        def __init__(self, predicted_class: int, positive_probability: float) -> None: ...
        def __str__(self) -> str: ...
        def __eq__(self, other: object) -> bool: ...
    class CLUSTER(Prediction):
        """k-means: the nearest centroid."""
        cluster: int
        distance: float
        def __init__(self, cluster: int, distance: float) -> None: ...
        def __str__(self) -> str: ...
        def __eq__(self, other: object) -> bool: ...
    class REGRESSION(Prediction):
        """Linear regression's estimate."""
        value: float
        def __init__(self, value: float) -> None: ...
        def __str__(self) -> str: ...
        def __eq__(self, other: object) -> bool: ...
    def is_CLASSIFICATION(self) -> bool: ...
    def is_classification(self) -> bool: ...
    def is_CLUSTER(self) -> bool: ...
    def is_cluster(self) -> bool: ...
    def is_REGRESSION(self) -> bool: ...
    def is_regression(self) -> bool: ...

class Purpose:
    """Why data is used: an HL7 v3 ActReason code."""
    class TREATMENT(Purpose):
        """`TREAT`: treatment (the care network's default)."""
        def __init__(self) -> None: ...
        def __str__(self) -> str: ...
        def __eq__(self, other: object) -> bool: ...
    class RESEARCH(Purpose):
        """`HRESCH`: healthcare research."""
        def __init__(self) -> None: ...
        def __str__(self) -> str: ...
        def __eq__(self, other: object) -> bool: ...
    class CLAIMS(Purpose):
        """`CLMATTCH`: claim attachment (insurers)."""
        def __init__(self) -> None: ...
        def __str__(self) -> str: ...
        def __eq__(self, other: object) -> bool: ...
    class OTHER(Purpose):
        """Any other ActReason code; it matches only the same code."""
        code: str
        def __init__(self, code: str) -> None: ...
        def __str__(self) -> str: ...
        def __eq__(self, other: object) -> bool: ...
    def is_TREATMENT(self) -> bool: ...
    def is_treatment(self) -> bool: ...
    def is_RESEARCH(self) -> bool: ...
    def is_research(self) -> bool: ...
    def is_CLAIMS(self) -> bool: ...
    def is_claims(self) -> bool: ...
    def is_OTHER(self) -> bool: ...
    def is_other(self) -> bool: ...

class AuditRecord:
    """What one audited entry says."""
    class MODEL_CARD(AuditRecord):
        """A model card."""
        card_json: str
        model_bytes: int
        def __init__(self, card_json: str, model_bytes: int) -> None: ...
        def __str__(self) -> str: ...
        def __eq__(self, other: object) -> bool: ...
    class DECISION_MADE(AuditRecord):
        """A prediction."""
        decision: Decision
        def __init__(self, decision: Decision) -> None: ...
        def __str__(self) -> str: ...
        def __eq__(self, other: object) -> bool: ...
    class MODEL_UPDATE(AuditRecord):
        """A federated model update."""
        round: str
        site: str
        samples: int
        consent_ids: typing.List[str]
        def __init__(self, round: str, site: str, samples: int, consent_ids: typing.List[str]) -> None: ...
        def __str__(self) -> str: ...
        def __eq__(self, other: object) -> bool: ...
    class FL_POLICY(AuditRecord):
        """A member's privacy-budget policy for federated tasks."""
        max_epsilon: float
        delta: float
        allow_non_private: bool
        def __init__(self, max_epsilon: float, delta: float, allow_non_private: bool) -> None: ...
        def __str__(self) -> str: ...
        def __eq__(self, other: object) -> bool: ...
    class FL_PLAN(AuditRecord):
        """A federated task's plan, as JSON."""
        plan_json: str
        def __init__(self, plan_json: str) -> None: ...
        def __str__(self) -> str: ...
        def __eq__(self, other: object) -> bool: ...
    class FL_ROUND(AuditRecord):
        """A federated round card, as JSON (sum, parameters, budget spent)."""
        card_json: str
        def __init__(self, card_json: str) -> None: ...
        def __str__(self) -> str: ...
        def __eq__(self, other: object) -> bool: ...
    class KEY_WITHHELD(AuditRecord):
        """A record cut off by consent: its key withheld from the network."""
        record_id: str
        reason: str
        consent_id: typing.Optional[str]
        def __init__(self, record_id: str, reason: str, consent_id: typing.Optional[str]) -> None: ...
        def __str__(self) -> str: ...
        def __eq__(self, other: object) -> bool: ...
    def is_MODEL_CARD(self) -> bool: ...
    def is_model_card(self) -> bool: ...
    def is_DECISION_MADE(self) -> bool: ...
    def is_decision_made(self) -> bool: ...
    def is_MODEL_UPDATE(self) -> bool: ...
    def is_model_update(self) -> bool: ...
    def is_FL_POLICY(self) -> bool: ...
    def is_fl_policy(self) -> bool: ...
    def is_FL_PLAN(self) -> bool: ...
    def is_fl_plan(self) -> bool: ...
    def is_FL_ROUND(self) -> bool: ...
    def is_fl_round(self) -> bool: ...
    def is_KEY_WITHHELD(self) -> bool: ...
    def is_key_withheld(self) -> bool: ...

class ConsentStatus(enum.Enum):
    """`Consent.status`: only `Active` consents take part in decisions."""
    DRAFT = 0
    PROPOSED = 1
    ACTIVE = 2
    REJECTED = 3
    INACTIVE = 4
    ENTERED_IN_ERROR = 5

class Grantee:
    """Whom a consent grants to."""
    class NETWORK(Grantee):
        """Every node acting in one network (a study), by network id (hex)."""
        network_id: str
        def __init__(self, network_id: str) -> None: ...
        def __str__(self) -> str: ...
        def __eq__(self, other: object) -> bool: ...
    class NODE(Grantee):
        """One node (an institution's installation, a phone), by author id."""
        author_id: str
        def __init__(self, author_id: str) -> None: ...
        def __str__(self) -> str: ...
        def __eq__(self, other: object) -> bool: ...
    def is_NETWORK(self) -> bool: ...
    def is_network(self) -> bool: ...
    def is_NODE(self) -> bool: ...
    def is_node(self) -> bool: ...

class ConsentSource:
    """Who wrote a consent into the chart, as the record's authorship shows."""
    class PATIENT_NODE(ConsentSource):
        """One of the patient's own nodes (their phone, listed with
        `Network.link_patient_node`).
        """
        author_id: str
        def __init__(self, author_id: str) -> None: ...
        def __str__(self) -> str: ...
        def __eq__(self, other: object) -> bool: ...
    class ON_BEHALF(ConsentSource):
        """A member institution, recording it on the patient's behalf."""
        recorder_author_id: str
        def __init__(self, recorder_author_id: str) -> None: ...
        def __str__(self) -> str: ...
        def __eq__(self, other: object) -> bool: ...
    def is_PATIENT_NODE(self) -> bool: ...
    def is_patient_node(self) -> bool: ...
    def is_ON_BEHALF(self) -> bool: ...
    def is_on_behalf(self) -> bool: ...

class MessageKind(enum.Enum):
    """What a relay message carries, so a transport can route it (for instance,
    hand a `Welcome` to the invitee for `Node.join_network`).
    """
    ENTRY = 0
    COMMIT = 1
    WELCOME = 2
    HEADS = 3
    UNKNOWN = 4

class RuleDecision(enum.Enum):
    """What a rule decided."""
    APPROVE = 0
    DENY = 1
    PEND = 2

class ModelMetrics:
    """Metrics on the held-out rows, by model family (the card's JSON has the
    ROC curve and calibration bins too).
    """
    class CLASSIFICATION(ModelMetrics):
        """Logistic regression, decision tree."""
        rows: int
        accuracy: float
        auc: typing.Optional[float]
        def __init__(self, rows: int, accuracy: float, auc: typing.Optional[float]) -> None: ...
        def __str__(self) -> str: ...
        def __eq__(self, other: object) -> bool: ...
    class CLUSTERING(ModelMetrics):
        """k-means."""
        rows: int
        inertia: float
        silhouette: typing.Optional[float]
        def __init__(self, rows: int, inertia: float, silhouette: typing.Optional[float]) -> None: ...
        def __str__(self) -> str: ...
        def __eq__(self, other: object) -> bool: ...
    class REGRESSION(ModelMetrics):
        """Linear regression."""
        rows: int
        r2: typing.Optional[float]
        rmse: float
        def __init__(self, rows: int, r2: typing.Optional[float], rmse: float) -> None: ...
        def __str__(self) -> str: ...
        def __eq__(self, other: object) -> bool: ...
    def is_CLASSIFICATION(self) -> bool: ...
    def is_classification(self) -> bool: ...
    def is_CLUSTERING(self) -> bool: ...
    def is_clustering(self) -> bool: ...
    def is_REGRESSION(self) -> bool: ...
    def is_regression(self) -> bool: ...

class VerifyStep(enum.Enum):
    """A step of `Network.verify_model`, in the order they run."""
    MODEL_BYTES = 0
    FEATURE_SPEC = 1
    CHECKPOINT = 2
    DATASET = 3
    CONSENT = 4
    UPDATES = 5
    MODEL = 6
    METRICS = 7

class ApiError(Exception):
    """Everything that can go wrong in a careledger call."""
    class InvalidArgument(ApiError):
        """An argument is malformed: a storage key that is not 32 bytes, an id
        that is not hex of the right length, a node name that is not 1–255
        printable ASCII characters without spaces.
        """
        reason: str
        def __init__(self, reason: str) -> None: ...
    class WrongStorageKey(ApiError):
        """The store file exists but was written under another storage key."""
        reason: str
        def __init__(self, reason: str) -> None: ...
    class Store(ApiError):
        """The store cannot be opened, read or written (I/O, corrupt or tampered
        file, a file from a newer careledger, randomness failure).
        """
        reason: str
        def __init__(self, reason: str) -> None: ...
    class Identity(ApiError):
        """The store holds no identity yet (use `Node.create`), or already holds
        one (use `Node.open`).
        """
        reason: str
        def __init__(self, reason: str) -> None: ...
    class UnknownNetwork(ApiError):
        """No network with that id in this store."""
        reason: str
        def __init__(self, reason: str) -> None: ...
    class NotAMember(ApiError):
        """This node is not (or no longer) a member of the network."""
        reason: str
        def __init__(self, reason: str) -> None: ...
    class CommitPending(ApiError):
        """A membership change of ours is still waiting for its turn: sync first."""
        reason: str
        def __init__(self, reason: str) -> None: ...
    class InvalidKeyPackage(ApiError):
        """The bytes are not a valid MLS KeyPackage for careledger's ciphersuite."""
        reason: str
        def __init__(self, reason: str) -> None: ...
    class InvalidWelcome(ApiError):
        """The bytes are not a Welcome for one of this node's key packages, or the
        relay holds none (yet): has the inviter synced since inviting?
        """
        reason: str
        def __init__(self, reason: str) -> None: ...
    class UnknownMember(ApiError):
        """No member with that author id in the network."""
        reason: str
        def __init__(self, reason: str) -> None: ...
    class UnknownPatient(ApiError):
        """No record for that patient in the network."""
        reason: str
        def __init__(self, reason: str) -> None: ...
    class ChartErased(ApiError):
        """The patient's chart was erased (its keys shredded): it cannot be
        read, exported or erased again.
        """
        reason: str
        def __init__(self, reason: str) -> None: ...
    class UnknownResource(ApiError):
        """The chart has no resource of that type and id to erase (or none was named)."""
        reason: str
        def __init__(self, reason: str) -> None: ...
    class BehindOwnChain(ApiError):
        """This store is older than entries this node already wrote in the
        network (restored from a backup): sync first, which catches its own
        chain up; writing before that would fork it.
        """
        reason: str
        def __init__(self, reason: str) -> None: ...
    class InvalidFhir(ApiError):
        """The data is not valid FHIR R4; nothing was stored. Problems name the
        source, line and field, never the value. Also raised when the core's
        importer refuses a consent that `grant_consent` or `revoke_consent`
        wrote.
        """
        reason: str
        problems: typing.List[str]
        def __init__(self, reason: str, problems: typing.List[str]) -> None: ...
    class Mls(ApiError):
        """openmls refused a membership operation."""
        reason: str
        def __init__(self, reason: str) -> None: ...
    class Record(ApiError):
        """A patient's record could not be written or read back."""
        reason: str
        def __init__(self, reason: str) -> None: ...
    class Relay(ApiError):
        """The relay could not be opened, read or written; nothing was lost and
        the call can be retried.
        """
        reason: str
        def __init__(self, reason: str) -> None: ...
    class MessageRejected(ApiError):
        """`Network.receive` refused `count` messages of the batch (tampered,
        forged, from a non-member, …). The batch's other messages **were**
        applied and stored, and the relay position was saved: do not resend
        the batch, carry on with the next one.
        """
        count: int
        reason: str
        def __init__(self, count: int, reason: str) -> None: ...
    class InvalidConsent(ApiError):
        """The consent cannot be written: an id that is not
        `[A-Za-z0-9-.]{1,64}`, a period that ends before it starts or lies
        outside the years 0001–9999, … The reason names the FHIR field.
        """
        reason: str
        def __init__(self, reason: str) -> None: ...
    class UnknownConsent(ApiError):
        """No consent with that id in the patient's chart."""
        reason: str
        def __init__(self, reason: str) -> None: ...
    class ConsentDenied(ApiError):
        """Consent does not permit this use of this patient's record (for
        instance a prediction for a purpose the patient has not granted).
        Nothing was written.
        """
        reason: str
        def __init__(self, reason: str) -> None: ...
    class EmptyAfterConsent(ApiError):
        """Consent left no record to train on: every chart of the network was
        excluded for the purpose. No model card was written.
        """
        reason: str
        excluded: int
        def __init__(self, reason: str, excluded: int) -> None: ...
    class UnknownModelCard(ApiError):
        """No model card with that entry id in this network (or not yet: sync)."""
        reason: str
        def __init__(self, reason: str) -> None: ...
    class InvalidSpec(ApiError):
        """The feature spec JSON is not a valid careledger feature spec, or the
        records do not fit it.
        """
        reason: str
        def __init__(self, reason: str) -> None: ...
    class NotCaughtUp(ApiError):
        """This replica does not hold the ledger state the call needs (a model
        card's checkpoint): it is behind, or holds other entries. Sync and
        retry; the reason says which.
        """
        reason: str
        def __init__(self, reason: str) -> None: ...
    class TrainingFailed(ApiError):
        """Feature extraction, fitting or evaluation failed (no convergence, a
        single class, too few rows, a missing value under the `fail`
        policy, invalid hyperparameters, …). No model card was written.
        """
        reason: str
        def __init__(self, reason: str) -> None: ...
    class InvalidLedgerEntry(ApiError):
        """An analytics entry on the ledger (model card, decision, model update)
        cannot be read, or does not apply to the call: for instance a
        federated card has no dataset of its own to prove membership in.
        """
        reason: str
        def __init__(self, reason: str) -> None: ...
    class InvalidProof(ApiError):
        """A dataset commitment or membership proof is malformed, or does not
        verify against the commitment.
        """
        reason: str
        def __init__(self, reason: str) -> None: ...
    class BudgetExceeded(ApiError):
        """A federated task would take a site's dataset above the network's
        privacy budget (or is not differentially private where the policy
        requires it). Nothing was written and no record was read.
        """
        reason: str
        def __init__(self, reason: str) -> None: ...
    class UnknownTask(ApiError):
        """No federated task or round card with that id in the network."""
        reason: str
        def __init__(self, reason: str) -> None: ...
    class FederationFailed(ApiError):
        """A federated plan, policy or secure-aggregation step breaks a rule
        (a field out of range, a malformed message from a site, too few
        valid shares).
        """
        reason: str
        def __init__(self, reason: str) -> None: ...
    class InvalidRuleSet(ApiError):
        """The rule-set document was refused: not JSON of the rule-set shape, a
        field that breaks a rule of the format, or an expression that does
        not compile or is beyond the engine's limits (size, nesting,
        comprehensions). Nothing was stored.
        """
        reason: str
        def __init__(self, reason: str) -> None: ...
    class InvalidPolicy(ApiError):
        """A rules policy's quorum is 0 or above the members of the network."""
        reason: str
        def __init__(self, reason: str) -> None: ...
    class UnknownRuleSet(ApiError):
        """No rule set with that hash in the network."""
        reason: str
        def __init__(self, reason: str) -> None: ...
    class UnknownPolicy(ApiError):
        """No rules policy with that entry id in the network."""
        reason: str
        def __init__(self, reason: str) -> None: ...
    class UnknownOutcome(ApiError):
        """No rule outcome with that entry id in the network."""
        reason: str
        def __init__(self, reason: str) -> None: ...
    class NotConfirmed(ApiError):
        """A model card is endorsed only after this node's own verification
        confirms it, and it answered mismatch. Nothing was written.
        """
        reason: str
        step: str
        def __init__(self, reason: str, step: str) -> None: ...
    class NodeUnusable(ApiError):
        """An earlier call panicked inside Rust while using this node, so its
        in-memory state cannot be trusted. Drop every object of this node and
        open the store again (the store itself is transactional).
        """
        reason: str
        def __init__(self, reason: str) -> None: ...

class EndorsementTarget:
    """What an endorsement is about."""
    class RULE_SET(EndorsementTarget):
        """A rule set, by the hash `add_rule_set` returned."""
        hash: str
        def __init__(self, hash: str) -> None: ...
        def __str__(self) -> str: ...
        def __eq__(self, other: object) -> bool: ...
    class MODEL_CARD(EndorsementTarget):
        """A model card, by its entry id (endorsed only after this node's own
        verification confirms it).
        """
        card_id: str
        def __init__(self, card_id: str) -> None: ...
        def __str__(self) -> str: ...
        def __eq__(self, other: object) -> bool: ...
    class POLICY(EndorsementTarget):
        """A policy, by its entry id."""
        policy_id: str
        def __init__(self, policy_id: str) -> None: ...
        def __str__(self) -> str: ...
        def __eq__(self, other: object) -> bool: ...
    def is_RULE_SET(self) -> bool: ...
    def is_rule_set(self) -> bool: ...
    def is_MODEL_CARD(self) -> bool: ...
    def is_model_card(self) -> bool: ...
    def is_POLICY(self) -> bool: ...
    def is_policy(self) -> bool: ...

class ExportFormat(enum.Enum):
    """The FHIR shape of an export."""
    BUNDLE = 0
    NDJSON = 1

class ModelKind:
    """A model kind and its hyperparameters (defaults as scikit-learn's where
    it has the same model).
    """
    class LOGISTIC_REGRESSION(ModelKind):
        """Binary logistic regression (L-BFGS) on standardised features."""
        alpha: float
        max_iterations: int
        gradient_tolerance: float
        def __init__(self, alpha: float = ..., max_iterations: int = ..., gradient_tolerance: float = ...) -> None: ...
        def __str__(self) -> str: ...
        def __eq__(self, other: object) -> bool: ...
    class DECISION_TREE(ModelKind):
        """Binary classification tree (Gini)."""
        max_depth: int
        min_samples_split: int
        def __init__(self, max_depth: int = ..., min_samples_split: int = ...) -> None: ...
        def __str__(self) -> str: ...
        def __eq__(self, other: object) -> bool: ...
    class K_MEANS(ModelKind):
        """k-means (k-means++ initialisation)."""
        k: int
        max_iterations: int
        tolerance: float
        n_runs: int
        def __init__(self, k: int, max_iterations: int = ..., tolerance: float = ..., n_runs: int = ...) -> None: ...
        def __str__(self) -> str: ...
        def __eq__(self, other: object) -> bool: ...
    class LINEAR_REGRESSION(ModelKind):
        """Ordinary least squares."""
        def __init__(self) -> None: ...
        def __str__(self) -> str: ...
        def __eq__(self, other: object) -> bool: ...
    def is_LOGISTIC_REGRESSION(self) -> bool: ...
    def is_logistic_regression(self) -> bool: ...
    def is_DECISION_TREE(self) -> bool: ...
    def is_decision_tree(self) -> bool: ...
    def is_K_MEANS(self) -> bool: ...
    def is_k_means(self) -> bool: ...
    def is_LINEAR_REGRESSION(self) -> bool: ...
    def is_linear_regression(self) -> bool: ...

class PredictInput:
    """The input of a prediction."""
    class RECORD(PredictInput):
        """A patient's chart in the network: features are read from it (missing
        ones take the training mean) and consent is checked.
        """
        patient_id: str
        def __init__(self, patient_id: str) -> None: ...
        def __str__(self) -> str: ...
        def __eq__(self, other: object) -> bool: ...
    class FEATURES(PredictInput):
        """Feature values in the spec's column order; the caller answers for
        consent.
        """
        values: typing.List[float]
        def __init__(self, values: typing.List[float]) -> None: ...
        def __str__(self) -> str: ...
        def __eq__(self, other: object) -> bool: ...
    def is_RECORD(self) -> bool: ...
    def is_record(self) -> bool: ...
    def is_FEATURES(self) -> bool: ...
    def is_features(self) -> bool: ...

class Activation:
    """Whether a target is active, and on what."""
    active: bool
    policy_id: typing.Optional[str]
    quorum: int
    endorsement_ids: typing.List[str]
    def __init__(self, *, active: bool, policy_id: typing.Optional[str], quorum: int, endorsement_ids: typing.List[str]) -> None: ...
    def __str__(self) -> str: ...
    def __eq__(self, other: object) -> bool: ...

class Decision:
    """A prediction recorded on the ledger (one decision entry)."""
    entry_id: str
    model_card_id: str
    patient_id: typing.Optional[str]
    output: Prediction
    purpose: Purpose
    consent_ids: typing.List[str]
    input_commitment: str
    time_ms: int
    provenance_json: str
    def __init__(self, *, entry_id: str, model_card_id: str, patient_id: typing.Optional[str], output: Prediction, purpose: Purpose, consent_ids: typing.List[str], input_commitment: str, time_ms: int, provenance_json: str) -> None: ...
    def __str__(self) -> str: ...
    def __eq__(self, other: object) -> bool: ...

class AuditEntry:
    """One analytics entry of a network's ledger."""
    entry_id: str
    author_id: str
    author_name: str
    time_ms: int
    record: AuditRecord
    def __init__(self, *, entry_id: str, author_id: str, author_name: str, time_ms: int, record: AuditRecord) -> None: ...
    def __str__(self) -> str: ...
    def __eq__(self, other: object) -> bool: ...

class Consent:
    """A patient's consent, as stored in the chart (a FHIR R4 `Consent`).

    `grantees`, `purposes`, `classes` and the period are those of the root
    provision (the grant itself); `exceptions` counts its nested provisions.
    """
    id: str
    patient_id: str
    status: ConsentStatus
    grantees: typing.List[Grantee]
    purposes: typing.List[Purpose]
    classes: typing.List[str]
    start_ms: typing.Optional[int]
    end_ms: typing.Optional[int]
    exceptions: int
    recorded_on_behalf_by: typing.Optional[str]
    fhir_json: str
    def __init__(self, *, id: str, patient_id: str, status: ConsentStatus, grantees: typing.List[Grantee], purposes: typing.List[Purpose], classes: typing.List[str], start_ms: typing.Optional[int], end_ms: typing.Optional[int], exceptions: int, recorded_on_behalf_by: typing.Optional[str], fhir_json: str) -> None: ...
    def __str__(self) -> str: ...
    def __eq__(self, other: object) -> bool: ...

class PatientConsent:
    """A consent read from a chart, with who wrote it."""
    consent: Consent
    source: ConsentSource
    mark_matches: bool
    def __init__(self, *, consent: Consent, source: ConsentSource, mark_matches: bool) -> None: ...
    def __str__(self) -> str: ...
    def __eq__(self, other: object) -> bool: ...

class ChartConsents:
    """A chart's consents."""
    consents: typing.List[PatientConsent]
    unreadable_ids: typing.List[str]
    def __init__(self, *, consents: typing.List[PatientConsent], unreadable_ids: typing.List[str]) -> None: ...
    def __str__(self) -> str: ...
    def __eq__(self, other: object) -> bool: ...

class EraseReport:
    """What an erasure did."""
    network_ids: typing.List[str]
    keys_shredded: int
    resources_kept: int
    entries: int
    by_patient: bool
    def __init__(self, *, network_ids: typing.List[str], keys_shredded: int, resources_kept: int, entries: int, by_patient: bool) -> None: ...
    def __str__(self) -> str: ...
    def __eq__(self, other: object) -> bool: ...

class ErasedChart:
    """A chart erased in a network."""
    patient_id: str
    entry_id: str
    author_id: str
    time_ms: int
    whole_chart: bool
    def __init__(self, *, patient_id: str, entry_id: str, author_id: str, time_ms: int, whole_chart: bool) -> None: ...
    def __str__(self) -> str: ...
    def __eq__(self, other: object) -> bool: ...

class FlPolicy:
    """A network's privacy-budget policy."""
    max_epsilon: float
    delta: float
    allow_non_private: bool
    def __init__(self, *, max_epsilon: float, delta: float, allow_non_private: bool) -> None: ...
    def __str__(self) -> str: ...
    def __eq__(self, other: object) -> bool: ...

class FlStep:
    """One step a node took."""
    action: str
    task_id: str
    round: typing.Optional[int]
    card_id: typing.Optional[str]
    def __init__(self, *, action: str, task_id: str, round: typing.Optional[int], card_id: typing.Optional[str]) -> None: ...
    def __str__(self) -> str: ...
    def __eq__(self, other: object) -> bool: ...

class FlTask:
    """A federated task as this node sees it."""
    task_id: str
    plan_entry_id: str
    coordinator: str
    objective: str
    private: bool
    participants: typing.List[str]
    rounds: int
    last_card_round: typing.Optional[int]
    finished: bool
    completed: typing.Optional[bool]
    last_card_id: typing.Optional[str]
    def __init__(self, *, task_id: str, plan_entry_id: str, coordinator: str, objective: str, private: bool, participants: typing.List[str], rounds: int, last_card_round: typing.Optional[int], finished: bool, completed: typing.Optional[bool], last_card_id: typing.Optional[str]) -> None: ...
    def __str__(self) -> str: ...
    def __eq__(self, other: object) -> bool: ...

class GranteeExport:
    """A chart filtered for a grantee."""
    text: str
    included: int
    withheld: int
    consent_ids: typing.List[str]
    def __init__(self, *, text: str, included: int, withheld: int, consent_ids: typing.List[str]) -> None: ...
    def __str__(self) -> str: ...
    def __eq__(self, other: object) -> bool: ...

class ImportReport:
    """What an import did."""
    resources: int
    patients: int
    changes: int
    entries: int
    def __init__(self, *, resources: int, patients: int, changes: int, entries: int) -> None: ...
    def __str__(self) -> str: ...
    def __eq__(self, other: object) -> bool: ...

class LedgerReport:
    """The result of re-checking a network's whole ledger."""
    entries: int
    authors: int
    signatures_ok: int
    seals_ok: int
    record_seals_ok: int
    record_keys_missing: int
    forks: int
    flagged: int
    problems: typing.List[str]
    clean: bool
    def __init__(self, *, entries: int, authors: int, signatures_ok: int, seals_ok: int, record_seals_ok: int, record_keys_missing: int, forks: int, flagged: int, problems: typing.List[str], clean: bool) -> None: ...
    def __str__(self) -> str: ...
    def __eq__(self, other: object) -> bool: ...

class MemberInfo:
    """A member of a network's current epoch."""
    name: str
    author_id: str
    fingerprint: str
    this_node: bool
    def __init__(self, *, name: str, author_id: str, fingerprint: str, this_node: bool) -> None: ...
    def __str__(self) -> str: ...
    def __eq__(self, other: object) -> bool: ...

class MembershipProofBytes:
    """A membership proof and the commitment it was made against, as bytes to
    hand to the patient.
    """
    commitment: bytes
    proof: bytes
    def __init__(self, *, commitment: bytes, proof: bytes) -> None: ...
    def __str__(self) -> str: ...
    def __eq__(self, other: object) -> bool: ...

class NetworkInfo:
    """A network as this node sees it."""
    id: str
    label: str
    epoch: int
    active: bool
    commit_pending: bool
    def __init__(self, *, id: str, label: str, epoch: int, active: bool, commit_pending: bool) -> None: ...
    def __str__(self) -> str: ...
    def __eq__(self, other: object) -> bool: ...

class OutcomeVerification:
    """A rule outcome re-checked on this replica. A difference is an answer
    (`confirmed` false, with the step), not an error.
    """
    entry_id: str
    confirmed: bool
    waiting: bool
    mismatch_step: typing.Optional[str]
    detail: typing.Optional[str]
    def __init__(self, *, entry_id: str, confirmed: bool, waiting: bool, mismatch_step: typing.Optional[str], detail: typing.Optional[str]) -> None: ...
    def __str__(self) -> str: ...
    def __eq__(self, other: object) -> bool: ...

class OutgoingMessage:
    """A message waiting in the node's outbox for the transport."""
    id: int
    network_id: str
    kind: MessageKind
    bytes: builtins.bytes
    def __init__(self, *, id: int, network_id: str, kind: MessageKind, bytes: builtins.bytes) -> None: ...
    def __str__(self) -> str: ...
    def __eq__(self, other: object) -> bool: ...

class ReceiveReport:
    """What receiving a batch did (a batch with refused messages raises
    `ApiError.MessageRejected` instead).
    """
    accepted: int
    duplicates: int
    held: int
    commits_applied: int
    commits_stale: int
    commits_retried: int
    removed: bool
    resent: int
    rule_outcomes_written: int
    rule_outcomes_confirmed: int
    rule_outcome_mismatches: int
    def __init__(self, *, accepted: int, duplicates: int, held: int, commits_applied: int, commits_stale: int, commits_retried: int, removed: bool, resent: int, rule_outcomes_written: int, rule_outcomes_confirmed: int, rule_outcome_mismatches: int) -> None: ...
    def __str__(self) -> str: ...
    def __eq__(self, other: object) -> bool: ...

class ResourceRef:
    """One resource of a chart, by type and id."""
    resource_type: str
    id: str
    def __init__(self, *, resource_type: str, id: str) -> None: ...
    def __str__(self) -> str: ...
    def __eq__(self, other: object) -> bool: ...

class RoundVerification:
    """A round card's re-verification."""
    confirmed: bool
    mismatch_step: typing.Optional[str]
    site: typing.Optional[str]
    detail: typing.Optional[str]
    passed: typing.List[str]
    def __init__(self, *, confirmed: bool, mismatch_step: typing.Optional[str], site: typing.Optional[str], detail: typing.Optional[str], passed: typing.List[str]) -> None: ...
    def __str__(self) -> str: ...
    def __eq__(self, other: object) -> bool: ...

class RuleOutcome:
    """A rule outcome on the ledger: exactly one per (rule set, rule, resource
    version).
    """
    entry_id: str
    executor_id: str
    rule_set_hash: str
    rule_set_name: str
    rule_set_version: int
    rule_id: str
    patient_id: str
    resource_type: str
    resource_id: str
    decision: RuleDecision
    amount: typing.Optional[str]
    currency: str
    reason: str
    clause: typing.Optional[int]
    decision_entry_id: typing.Optional[str]
    endorsement_ids: typing.List[str]
    duplicate_ids: typing.List[str]
    claim_response_json: str
    outcome_json: str
    def __init__(self, *, entry_id: str, executor_id: str, rule_set_hash: str, rule_set_name: str, rule_set_version: int, rule_id: str, patient_id: str, resource_type: str, resource_id: str, decision: RuleDecision, amount: typing.Optional[str], currency: str, reason: str, clause: typing.Optional[int], decision_entry_id: typing.Optional[str], endorsement_ids: typing.List[str], duplicate_ids: typing.List[str], claim_response_json: str, outcome_json: str) -> None: ...
    def __str__(self) -> str: ...
    def __eq__(self, other: object) -> bool: ...

class RuleSetAdded:
    """A rule set stored by `add_rule_set`."""
    entry_id: str
    hash: str
    def __init__(self, *, entry_id: str, hash: str) -> None: ...
    def __str__(self) -> str: ...
    def __eq__(self, other: object) -> bool: ...

class RuleSetInfo:
    """A rule set on the ledger, with its activation now."""
    entry_id: str
    author_id: str
    hash: str
    name: str
    version: int
    description: str
    currency: str
    executors: typing.List[str]
    rule_ids: typing.List[str]
    activation: Activation
    in_force: bool
    def __init__(self, *, entry_id: str, author_id: str, hash: str, name: str, version: int, description: str, currency: str, executors: typing.List[str], rule_ids: typing.List[str], activation: Activation, in_force: bool) -> None: ...
    def __str__(self) -> str: ...
    def __eq__(self, other: object) -> bool: ...

class RulesActivity:
    """What a rules pass did (`run_rules`)."""
    outcomes_written: int
    decisions_written: int
    consent_denied: int
    failures: typing.List[str]
    confirmed: int
    mismatches: typing.List[str]
    waiting: int
    def __init__(self, *, outcomes_written: int, decisions_written: int, consent_denied: int, failures: typing.List[str], confirmed: int, mismatches: typing.List[str], waiting: int) -> None: ...
    def __str__(self) -> str: ...
    def __eq__(self, other: object) -> bool: ...

class ShareReport:
    """What `Network.share_to_network` did."""
    patients: int
    patients_shared: int
    resources_permitted: int
    resources_withheld: int
    records_cut_off: int
    records_restored: int
    unreadable_charts: int
    entries: int
    consent_ids: typing.List[str]
    def __init__(self, *, patients: int, patients_shared: int, resources_permitted: int, resources_withheld: int, records_cut_off: int, records_restored: int, unreadable_charts: int, entries: int, consent_ids: typing.List[str]) -> None: ...
    def __str__(self) -> str: ...
    def __eq__(self, other: object) -> bool: ...

class SiteBudget:
    """What one site's dataset has spent."""
    site_id: str
    name: str
    epsilon: float
    delta: float
    dp_rounds: int
    non_private_rounds: int
    def __init__(self, *, site_id: str, name: str, epsilon: float, delta: float, dp_rounds: int, non_private_rounds: int) -> None: ...
    def __str__(self) -> str: ...
    def __eq__(self, other: object) -> bool: ...

class StoreAudit:
    """What a full audit of the store file found."""
    tables: int
    rows: int
    problems: typing.List[str]
    clean: bool
    def __init__(self, *, tables: int, rows: int, problems: typing.List[str], clean: bool) -> None: ...
    def __str__(self) -> str: ...
    def __eq__(self, other: object) -> bool: ...

class SyncReport:
    """What a sync with a relay did."""
    published: int
    fetched: int
    received: ReceiveReport
    rejected: typing.List[str]
    def __init__(self, *, published: int, fetched: int, received: ReceiveReport, rejected: typing.List[str]) -> None: ...
    def __str__(self) -> str: ...
    def __eq__(self, other: object) -> bool: ...

class TickReport:
    """What `Node.tick` did."""
    charts_decided: int
    records_cut_off: int
    entries: int
    next_due_ms: typing.Optional[int]
    def __init__(self, *, charts_decided: int, records_cut_off: int, entries: int, next_due_ms: typing.Optional[int]) -> None: ...
    def __str__(self) -> str: ...
    def __eq__(self, other: object) -> bool: ...

class TrainResult:
    """A model card written by `Network.train`."""
    entry_id: str
    card_json: str
    dataset_size: int
    excluded_by_consent: int
    training_rows: int
    test_rows: int
    consent_ids: typing.List[str]
    metrics: typing.Optional[ModelMetrics]
    model_hash: str
    def __init__(self, *, entry_id: str, card_json: str, dataset_size: int, excluded_by_consent: int, training_rows: int, test_rows: int, consent_ids: typing.List[str], metrics: typing.Optional[ModelMetrics], model_hash: str) -> None: ...
    def __str__(self) -> str: ...
    def __eq__(self, other: object) -> bool: ...

class Verification:
    """The answer of `Network.verify_model`."""
    confirmed: bool
    exact: bool
    max_relative_difference: typing.Optional[float]
    mismatch_step: typing.Optional[VerifyStep]
    detail: typing.Optional[str]
    passed: typing.List[VerifyStep]
    def __init__(self, *, confirmed: bool, exact: bool, max_relative_difference: typing.Optional[float], mismatch_step: typing.Optional[VerifyStep], detail: typing.Optional[str], passed: typing.List[VerifyStep]) -> None: ...
    def __str__(self) -> str: ...
    def __eq__(self, other: object) -> bool: ...

def model_card_dataset_commitment(card_json: str) -> bytes:
    """The dataset commitment a model card names (its JSON, as in
    `TrainResult.card_json`), encoded as `verify_membership` takes it: check
    a proof against the card itself rather than the prover's word.

    Errors: `InvalidLedgerEntry` (not a model card, or a federated card,
    which has no dataset of its own).
    """

def verify_membership(commitment: bytes, record_id: str, proof: bytes) -> bool:
    """Check a membership proof for `record_id` against a dataset commitment
    (both from `Network.prove_membership`): `true` if the record is in the
    dataset, `false` if the proof shows it is not. Needs no node: a phone
    that is not a member of the study can check.

    Errors: `InvalidProof` (malformed bytes, or a proof that does not
    verify against the commitment).
    """

class Network(NetworkProtocol):
    """One network (an MLS group of institutions and patients' phones) as seen
    by the `Node` that made this object: membership, records, transport and
    audit. It shares that node's store and lock, and stays valid as long as
    any object of the node is alive.

    Membership changes (`invite`, `remove`, `update_keys`) take effect only
    once their Commit comes back first in relay order: sync afterwards.
    """
    def activation(self, target: EndorsementTarget) -> Activation:
        """Whether a target is active now."""
    def add_rule_set(self, document: bytes) -> RuleSetAdded:
        """Store a rule-set document (JSON bytes, expressions in CEL). It is
        parsed and every expression compiled under the engine's limits
        first; it is inactive until the policy's quorum endorses it.

        Errors: `InvalidRuleSet` (malformed, or hostile: too large, too deep,
        comprehensions nested too deeply, wrong types; nothing stored),
        `NotAMember`.
        """
    def announce_heads(self) -> None:
        """Queue an announcement of this node's chain heads; peers answer by
        resending entries lost in transit. `sync_local_relay` does this itself.
        """
    def audit(self) -> typing.List[AuditEntry]:
        """Model cards, decisions, model updates and consent cut-offs on this
        network's ledger, in local order.
        """
    def consents(self, patient_id: str) -> ChartConsents:
        """The consents in `patient_id`'s chart, with who wrote each.

        Errors: `UnknownPatient`, `Record`.
        """
    def endorse(self, target: EndorsementTarget) -> str:
        """Endorse a rule set, model card or policy. A model card is endorsed
        only after this node's own verification confirms it. When this node
        executes a rule set the endorsement activates, its outcomes are
        written in the same call. Returns the endorsement entry id.

        Errors: `UnknownRuleSet`, `UnknownPolicy`, `UnknownModelCard`,
        `NotConfirmed` (the model card's verification answered mismatch),
        `InvalidArgument`, `NotAMember`.
        """
    def erase_chart(self, patient_id: str) -> EraseReport:
        """Erase a patient's whole chart by crypto-shredding: an erase entry, and
        every key of the chart and its local copy deleted here (every member
        does the same when it syncs; the chart is erased too in the networks
        this node shared it into). The ciphertext stays in the ledger,
        unreadable. What another node already decrypted or exported cannot
        be taken back.

        Errors: `UnknownPatient`, `ChartErased`, `NotAMember`, `BehindOwnChain`.
        """
    def erase_resources(self, patient_id: str, resources: typing.List[ResourceRef]) -> EraseReport:
        """Erase some resources of a chart: the chart is shredded as by
        `erase_chart`, then the rest of it is written again under a fresh key.

        Errors: as `erase_chart`, and `UnknownResource`.
        """
    def erased_charts(self) -> typing.List[ErasedChart]:
        """The charts erased in this network."""
    def export_for_grantee(self, patient_id: str, grantees: typing.List[Grantee], purpose: Purpose, format: ExportFormat) -> GranteeExport:
        """`patient_id`'s chart with only what consent permits `grantees` to use
        for `purpose` now (charts without a covering consent follow the
        network default: treatment by this network's members). Consents
        themselves are left out.

        Errors: `InvalidArgument` (a grantee id), `UnknownPatient`, `Record`.
        """
    def export_patient(self, patient_id: str) -> str:
        """A patient's chart as a FHIR `Bundle` (type `collection`), JSON text.

        Errors: `UnknownPatient`, `Record`.
        """
    def export_patient_ndjson(self, patient_id: str) -> str:
        """A patient's chart as FHIR NDJSON (one resource per line)."""
    def fl_budget(self) -> typing.List[SiteBudget]:
        """What each site's dataset has spent (unfinished tasks count with all
        their rounds).
        """
    def fl_coordinator_step(self) -> typing.List[FlStep]:
        """One coordinator step in every open task this node planned."""
    def fl_plan(self, request_json: str) -> str:
        """Write a task plan as coordinator from the request JSON of the core's
        `PlanRequest::from_json`; returns the plan as JSON.

        Errors: `BudgetExceeded` (nothing written), `FederationFailed`
        (a field breaks a rule), `InvalidLedgerEntry` (request JSON), `NotAMember`.
        """
    def fl_policy(self) -> typing.Optional[FlPolicy]:
        """The network's effective budget policy, if any member wrote one."""
    def fl_set_policy(self, max_epsilon: float, delta: float, allow_non_private: bool) -> str:
        """Write this node's privacy-budget policy for the network; the
        effective policy is the strictest of every member's latest. Returns
        the entry id.

        Errors: `InvalidLedgerEntry` (ε not positive, δ not in (0, 1)), `NotAMember`.
        """
    def fl_site_step(self, source_network_id: str) -> typing.List[FlStep]:
        """One site step in every open task naming this node, with
        `source_network_id` as its data network (see the module docs).

        Errors: `BudgetExceeded` (the site refuses before reading a record),
        `EmptyAfterConsent`, `TrainingFailed`, `FederationFailed`, `NotAMember`.
        """
    def fl_tasks(self) -> typing.List[FlTask]:
        """The network's federated tasks."""
    def fl_verify_round(self, card_id: str) -> RoundVerification:
        """Re-check round card `card_id` from this replica. A difference is an
        answer (`confirmed` false, with the step), not an error.

        Errors: `UnknownTask` (no such card), `InvalidArgument`.
        """
    def grant_consent(self, consent_id: str, patient_id: str, grantee: Grantee, purposes: typing.List[Purpose], classes: typing.List[str] = ..., start_ms: typing.Optional[int] = ..., end_ms: typing.Optional[int] = ...) -> Consent:
        """Write a consent granting `grantee` the `purposes` (all if empty) on
        the resource types `classes` (all if empty), valid from `start_ms`
        through `end_ms` (Unix ms, both inclusive; open where `None`), into
        `patient_id`'s chart. Returns the consent as stored.

        Written by one of the patient's own nodes (the phone, see
        `link_patient_node`) it is the patient's consent; written by anyone
        else it is marked as recorded on the patient's behalf by this node.
        Writing an existing `consent_id` again replaces that consent.

        Errors: `InvalidConsent` (id, period), `InvalidArgument` (grantee
        id), `InvalidFhir` (the consent's FHIR refused on import, every
        problem listed), `UnknownPatient`, `Record`.
        """
    def id(self) -> str:
        """The network id (hex), the same on every member."""
    def import_fhir(self, source_name: str, bytes: bytes) -> ImportReport:
        """Import FHIR R4 (Bulk NDJSON, or a Bundle of type transaction, batch,
        collection or searchset) into the network's records. `source_name`
        (e.g. a file name) only labels problems. All or nothing: any invalid
        resource raises `InvalidFhir` and nothing is stored.
        """
    def info(self) -> NetworkInfo:
        """Label, epoch and membership state."""
    def invite(self, key_package: bytes) -> None:
        """Propose adding the owner of `key_package` (from its `Node.key_package`).
        Once the Commit wins (sync), the Welcome for the invitee is queued.

        Errors: `InvalidKeyPackage`, `CommitPending`, `NotAMember`.
        """
    def link_patient_node(self, patient_id: str, author_id: str) -> bool:
        """List the node `author_id` (the patient's phone) as one of the
        patient's own nodes in the chart's `Patient` resource, so consents it
        writes count as the patient's. `false` if it was listed already.

        Errors: `InvalidArgument`, `UnknownPatient`, `Record` (no `Patient`
        resource with the patient's id).
        """
    def members(self) -> typing.List[MemberInfo]:
        """The members of the current epoch."""
    def patients(self) -> typing.List[str]:
        """Ids of the patients with a record in this network."""
    def predict(self, card_id: str, input: PredictInput, purpose: Purpose) -> Decision:
        """Predict with the model of card `card_id` and record the decision:
        exactly one decision entry per successful prediction, none for a
        refused one.

        Errors: `ConsentDenied` (a record input whose consent does not permit
        `purpose` for this node), `UnknownModelCard`, `UnknownPatient`,
        `InvalidArgument` (ids, feature count or values).
        """
    def prove_membership(self, card_id: str, record_id: str) -> MembershipProofBytes:
        """A proof that `record_id` (a patient id) is, or is not, in the
        dataset of model card `card_id`, for the patient to check with
        `verify_membership`.

        Errors: `UnknownModelCard`, `NotCaughtUp`, `InvalidLedgerEntry` (a
        federated card has no dataset of its own).
        """
    def receive(self, messages: typing.List[bytes], relay_seq: typing.Optional[int]) -> ReceiveReport:
        """Feed messages from this network's relay log, in relay order, as one
        transaction (the sans-IO path for apps with their own transport).
        `relay_seq` is the log position of the last message, saved with the
        batch so the app can resume after it (`relay_cursor`).

        If any message is refused (tampered, forged, not from a member) this
        raises `MessageRejected` **after** the rest of the batch was applied
        and saved: do not resend the batch.
        """
    def relay_cursor(self) -> int:
        """The relay log position this node has consumed (0 before any)."""
    def remove(self, author_id: str) -> None:
        """Propose removing the member with `author_id` (64 hex digits). Once the
        Commit wins, every record is re-keyed: the removed node cannot read
        anything written afterwards.

        Errors: `InvalidArgument`, `UnknownMember`, `CommitPending`.
        """
    def republish_commit(self) -> bool:
        """Queue this node's pending Commit again, in case it was lost in
        transit; `false` if none is pending. `sync_local_relay` does this itself.
        """
    def revoke_consent(self, patient_id: str, consent_id: str) -> Consent:
        """Revoke consent `consent_id` of `patient_id`: store it again with
        status `inactive`. It stops applying at once here, in other networks
        once the next `share_to_network` carries the revocation there.
        Returns the consent as stored.

        Errors: `UnknownConsent`, `InvalidFhir`, `UnknownPatient`, `Record`.
        """
    def rule_outcomes(self) -> typing.List[RuleOutcome]:
        """The network's rule outcomes: one per (rule set, rule, resource
        version), each with its `ClaimResponse`.
        """
    def rule_sets(self) -> typing.List[RuleSetInfo]:
        """The network's rule sets with their activation now, by name and version."""
    def run_rules(self) -> RulesActivity:
        """Run the rules this node executes over every record now (receiving
        does this by itself for changed records). Never writes a second
        outcome for a resource version.
        """
    def set_rules_policy(self, quorum: int, replaces_policy_id: typing.Optional[str] = ...) -> str:
        """Write the network's rules policy: a rule set, a model card a rule
        uses, or a later policy is active once `quorum` members endorse it.
        `replaces_policy_id` names the policy this one replaces (it takes
        effect once that policy's quorum endorses it). Returns the entry id.

        Errors: `InvalidPolicy` (quorum 0 or above the members),
        `InvalidArgument`, `NotAMember`.
        """
    def share_to_network(self, target: Network, purpose: Purpose) -> ShareReport:
        """Share this network's charts into `target` (another network of the
        same node), each resource only if consent permits `purpose` for every
        other member of `target`; cut off the charts nothing of which may go
        there any more (their record key in `target` is rotated and kept
        from the other members). Running it again with nothing changed
        writes nothing. Sync `target` afterwards.

        Errors: `InvalidArgument` (the same network, or a `target` of another
        node), `NotAMember`, `Record`.
        """
    def share_types_to_network(self, target: Network, purpose: Purpose, types: typing.List[str]) -> ShareReport:
        """Share this network's charts into `target` (a claims network of the
        same node) as `share_to_network` does, but only resources of the
        `types` named (at least one, e.g. `["Claim", "Coverage"]`).

        Errors: `InvalidArgument` (no type, a malformed type, the same
        network, a `target` of another node), `NotAMember`, `Record`.
        """
    def sync_local_relay(self, relay_path: str) -> SyncReport:
        """One full exchange with the local relay file at `relay_path` (created if
        missing): announce heads, publish the outbox, fetch and receive
        everything new, publish what that produced. Refused relay messages are
        listed in the report, never stored.
        """
    def train(self, spec_json: str, kind: ModelKind, seed: int = ..., holdout_fraction: float = ...) -> TrainResult:
        """Train a model on this network's records as they are now, keeping
        only what consent permits for research by this network and this
        node, and write its model card to the ledger. `spec_json` is a
        careledger feature spec; `holdout_fraction` of the rows (by
        pseudonym, in [0, 1)) is held out for the card's metrics.

        Errors: `InvalidSpec`, `EmptyAfterConsent`, `TrainingFailed`,
        `InvalidArgument` (hold-out), `NotAMember`.
        """
    def update_keys(self) -> None:
        """Propose fresh key material for this node's leaf (post-compromise security)."""
    def verify_ledger(self) -> LedgerReport:
        """Re-check the whole ledger: signatures, chains, seals, actor bindings.
        Problems are listed in the report, never fixed.
        """
    def verify_model(self, card_id: str) -> Verification:
        """Re-verify model card `card_id` from this replica: rebuild its dataset
        at its checkpoint, retrain, compare. A difference is an answer
        (`confirmed` false, with the step), not an error.

        Errors: `UnknownModelCard`, `InvalidLedgerEntry`, `InvalidArgument`.
        """
    def verify_outcome(self, entry_id: str) -> OutcomeVerification:
        """Re-evaluate outcome `entry_id` on this replica.

        Errors: `UnknownOutcome`, `InvalidArgument`.
        """
    def verify_outcomes(self) -> typing.List[OutcomeVerification]:
        """Re-check every outcome (duplicates included); executors of those
        that differ are flagged (`verify_ledger` reports them).
        """
    def withdraw_endorsement(self, target: EndorsementTarget) -> str:
        """Withdraw this node's endorsement of a target; below quorum it is no
        longer active (no new outcomes). Returns the entry id.

        Errors: as `endorse`.
        """

class NetworkProtocol(typing.Protocol):
    """One network (an MLS group of institutions and patients' phones) as seen
    by the `Node` that made this object: membership, records, transport and
    audit. It shares that node's store and lock, and stays valid as long as
    any object of the node is alive.

    Membership changes (`invite`, `remove`, `update_keys`) take effect only
    once their Commit comes back first in relay order: sync afterwards.
    """
    def activation(self, target: EndorsementTarget) -> Activation:
        """Whether a target is active now."""
    def add_rule_set(self, document: bytes) -> RuleSetAdded:
        """Store a rule-set document (JSON bytes, expressions in CEL). It is
        parsed and every expression compiled under the engine's limits
        first; it is inactive until the policy's quorum endorses it.

        Errors: `InvalidRuleSet` (malformed, or hostile: too large, too deep,
        comprehensions nested too deeply, wrong types; nothing stored),
        `NotAMember`.
        """
    def announce_heads(self) -> None:
        """Queue an announcement of this node's chain heads; peers answer by
        resending entries lost in transit. `sync_local_relay` does this itself.
        """
    def audit(self) -> typing.List[AuditEntry]:
        """Model cards, decisions, model updates and consent cut-offs on this
        network's ledger, in local order.
        """
    def consents(self, patient_id: str) -> ChartConsents:
        """The consents in `patient_id`'s chart, with who wrote each.

        Errors: `UnknownPatient`, `Record`.
        """
    def endorse(self, target: EndorsementTarget) -> str:
        """Endorse a rule set, model card or policy. A model card is endorsed
        only after this node's own verification confirms it. When this node
        executes a rule set the endorsement activates, its outcomes are
        written in the same call. Returns the endorsement entry id.

        Errors: `UnknownRuleSet`, `UnknownPolicy`, `UnknownModelCard`,
        `NotConfirmed` (the model card's verification answered mismatch),
        `InvalidArgument`, `NotAMember`.
        """
    def erase_chart(self, patient_id: str) -> EraseReport:
        """Erase a patient's whole chart by crypto-shredding: an erase entry, and
        every key of the chart and its local copy deleted here (every member
        does the same when it syncs; the chart is erased too in the networks
        this node shared it into). The ciphertext stays in the ledger,
        unreadable. What another node already decrypted or exported cannot
        be taken back.

        Errors: `UnknownPatient`, `ChartErased`, `NotAMember`, `BehindOwnChain`.
        """
    def erase_resources(self, patient_id: str, resources: typing.List[ResourceRef]) -> EraseReport:
        """Erase some resources of a chart: the chart is shredded as by
        `erase_chart`, then the rest of it is written again under a fresh key.

        Errors: as `erase_chart`, and `UnknownResource`.
        """
    def erased_charts(self) -> typing.List[ErasedChart]:
        """The charts erased in this network."""
    def export_for_grantee(self, patient_id: str, grantees: typing.List[Grantee], purpose: Purpose, format: ExportFormat) -> GranteeExport:
        """`patient_id`'s chart with only what consent permits `grantees` to use
        for `purpose` now (charts without a covering consent follow the
        network default: treatment by this network's members). Consents
        themselves are left out.

        Errors: `InvalidArgument` (a grantee id), `UnknownPatient`, `Record`.
        """
    def export_patient(self, patient_id: str) -> str:
        """A patient's chart as a FHIR `Bundle` (type `collection`), JSON text.

        Errors: `UnknownPatient`, `Record`.
        """
    def export_patient_ndjson(self, patient_id: str) -> str:
        """A patient's chart as FHIR NDJSON (one resource per line)."""
    def fl_budget(self) -> typing.List[SiteBudget]:
        """What each site's dataset has spent (unfinished tasks count with all
        their rounds).
        """
    def fl_coordinator_step(self) -> typing.List[FlStep]:
        """One coordinator step in every open task this node planned."""
    def fl_plan(self, request_json: str) -> str:
        """Write a task plan as coordinator from the request JSON of the core's
        `PlanRequest::from_json`; returns the plan as JSON.

        Errors: `BudgetExceeded` (nothing written), `FederationFailed`
        (a field breaks a rule), `InvalidLedgerEntry` (request JSON), `NotAMember`.
        """
    def fl_policy(self) -> typing.Optional[FlPolicy]:
        """The network's effective budget policy, if any member wrote one."""
    def fl_set_policy(self, max_epsilon: float, delta: float, allow_non_private: bool) -> str:
        """Write this node's privacy-budget policy for the network; the
        effective policy is the strictest of every member's latest. Returns
        the entry id.

        Errors: `InvalidLedgerEntry` (ε not positive, δ not in (0, 1)), `NotAMember`.
        """
    def fl_site_step(self, source_network_id: str) -> typing.List[FlStep]:
        """One site step in every open task naming this node, with
        `source_network_id` as its data network (see the module docs).

        Errors: `BudgetExceeded` (the site refuses before reading a record),
        `EmptyAfterConsent`, `TrainingFailed`, `FederationFailed`, `NotAMember`.
        """
    def fl_tasks(self) -> typing.List[FlTask]:
        """The network's federated tasks."""
    def fl_verify_round(self, card_id: str) -> RoundVerification:
        """Re-check round card `card_id` from this replica. A difference is an
        answer (`confirmed` false, with the step), not an error.

        Errors: `UnknownTask` (no such card), `InvalidArgument`.
        """
    def grant_consent(self, consent_id: str, patient_id: str, grantee: Grantee, purposes: typing.List[Purpose], classes: typing.List[str] = ..., start_ms: typing.Optional[int] = ..., end_ms: typing.Optional[int] = ...) -> Consent:
        """Write a consent granting `grantee` the `purposes` (all if empty) on
        the resource types `classes` (all if empty), valid from `start_ms`
        through `end_ms` (Unix ms, both inclusive; open where `None`), into
        `patient_id`'s chart. Returns the consent as stored.

        Written by one of the patient's own nodes (the phone, see
        `link_patient_node`) it is the patient's consent; written by anyone
        else it is marked as recorded on the patient's behalf by this node.
        Writing an existing `consent_id` again replaces that consent.

        Errors: `InvalidConsent` (id, period), `InvalidArgument` (grantee
        id), `InvalidFhir` (the consent's FHIR refused on import, every
        problem listed), `UnknownPatient`, `Record`.
        """
    def id(self) -> str:
        """The network id (hex), the same on every member."""
    def import_fhir(self, source_name: str, bytes: bytes) -> ImportReport:
        """Import FHIR R4 (Bulk NDJSON, or a Bundle of type transaction, batch,
        collection or searchset) into the network's records. `source_name`
        (e.g. a file name) only labels problems. All or nothing: any invalid
        resource raises `InvalidFhir` and nothing is stored.
        """
    def info(self) -> NetworkInfo:
        """Label, epoch and membership state."""
    def invite(self, key_package: bytes) -> None:
        """Propose adding the owner of `key_package` (from its `Node.key_package`).
        Once the Commit wins (sync), the Welcome for the invitee is queued.

        Errors: `InvalidKeyPackage`, `CommitPending`, `NotAMember`.
        """
    def link_patient_node(self, patient_id: str, author_id: str) -> bool:
        """List the node `author_id` (the patient's phone) as one of the
        patient's own nodes in the chart's `Patient` resource, so consents it
        writes count as the patient's. `false` if it was listed already.

        Errors: `InvalidArgument`, `UnknownPatient`, `Record` (no `Patient`
        resource with the patient's id).
        """
    def members(self) -> typing.List[MemberInfo]:
        """The members of the current epoch."""
    def patients(self) -> typing.List[str]:
        """Ids of the patients with a record in this network."""
    def predict(self, card_id: str, input: PredictInput, purpose: Purpose) -> Decision:
        """Predict with the model of card `card_id` and record the decision:
        exactly one decision entry per successful prediction, none for a
        refused one.

        Errors: `ConsentDenied` (a record input whose consent does not permit
        `purpose` for this node), `UnknownModelCard`, `UnknownPatient`,
        `InvalidArgument` (ids, feature count or values).
        """
    def prove_membership(self, card_id: str, record_id: str) -> MembershipProofBytes:
        """A proof that `record_id` (a patient id) is, or is not, in the
        dataset of model card `card_id`, for the patient to check with
        `verify_membership`.

        Errors: `UnknownModelCard`, `NotCaughtUp`, `InvalidLedgerEntry` (a
        federated card has no dataset of its own).
        """
    def receive(self, messages: typing.List[bytes], relay_seq: typing.Optional[int]) -> ReceiveReport:
        """Feed messages from this network's relay log, in relay order, as one
        transaction (the sans-IO path for apps with their own transport).
        `relay_seq` is the log position of the last message, saved with the
        batch so the app can resume after it (`relay_cursor`).

        If any message is refused (tampered, forged, not from a member) this
        raises `MessageRejected` **after** the rest of the batch was applied
        and saved: do not resend the batch.
        """
    def relay_cursor(self) -> int:
        """The relay log position this node has consumed (0 before any)."""
    def remove(self, author_id: str) -> None:
        """Propose removing the member with `author_id` (64 hex digits). Once the
        Commit wins, every record is re-keyed: the removed node cannot read
        anything written afterwards.

        Errors: `InvalidArgument`, `UnknownMember`, `CommitPending`.
        """
    def republish_commit(self) -> bool:
        """Queue this node's pending Commit again, in case it was lost in
        transit; `false` if none is pending. `sync_local_relay` does this itself.
        """
    def revoke_consent(self, patient_id: str, consent_id: str) -> Consent:
        """Revoke consent `consent_id` of `patient_id`: store it again with
        status `inactive`. It stops applying at once here, in other networks
        once the next `share_to_network` carries the revocation there.
        Returns the consent as stored.

        Errors: `UnknownConsent`, `InvalidFhir`, `UnknownPatient`, `Record`.
        """
    def rule_outcomes(self) -> typing.List[RuleOutcome]:
        """The network's rule outcomes: one per (rule set, rule, resource
        version), each with its `ClaimResponse`.
        """
    def rule_sets(self) -> typing.List[RuleSetInfo]:
        """The network's rule sets with their activation now, by name and version."""
    def run_rules(self) -> RulesActivity:
        """Run the rules this node executes over every record now (receiving
        does this by itself for changed records). Never writes a second
        outcome for a resource version.
        """
    def set_rules_policy(self, quorum: int, replaces_policy_id: typing.Optional[str] = ...) -> str:
        """Write the network's rules policy: a rule set, a model card a rule
        uses, or a later policy is active once `quorum` members endorse it.
        `replaces_policy_id` names the policy this one replaces (it takes
        effect once that policy's quorum endorses it). Returns the entry id.

        Errors: `InvalidPolicy` (quorum 0 or above the members),
        `InvalidArgument`, `NotAMember`.
        """
    def share_to_network(self, target: Network, purpose: Purpose) -> ShareReport:
        """Share this network's charts into `target` (another network of the
        same node), each resource only if consent permits `purpose` for every
        other member of `target`; cut off the charts nothing of which may go
        there any more (their record key in `target` is rotated and kept
        from the other members). Running it again with nothing changed
        writes nothing. Sync `target` afterwards.

        Errors: `InvalidArgument` (the same network, or a `target` of another
        node), `NotAMember`, `Record`.
        """
    def share_types_to_network(self, target: Network, purpose: Purpose, types: typing.List[str]) -> ShareReport:
        """Share this network's charts into `target` (a claims network of the
        same node) as `share_to_network` does, but only resources of the
        `types` named (at least one, e.g. `["Claim", "Coverage"]`).

        Errors: `InvalidArgument` (no type, a malformed type, the same
        network, a `target` of another node), `NotAMember`, `Record`.
        """
    def sync_local_relay(self, relay_path: str) -> SyncReport:
        """One full exchange with the local relay file at `relay_path` (created if
        missing): announce heads, publish the outbox, fetch and receive
        everything new, publish what that produced. Refused relay messages are
        listed in the report, never stored.
        """
    def train(self, spec_json: str, kind: ModelKind, seed: int = ..., holdout_fraction: float = ...) -> TrainResult:
        """Train a model on this network's records as they are now, keeping
        only what consent permits for research by this network and this
        node, and write its model card to the ledger. `spec_json` is a
        careledger feature spec; `holdout_fraction` of the rows (by
        pseudonym, in [0, 1)) is held out for the card's metrics.

        Errors: `InvalidSpec`, `EmptyAfterConsent`, `TrainingFailed`,
        `InvalidArgument` (hold-out), `NotAMember`.
        """
    def update_keys(self) -> None:
        """Propose fresh key material for this node's leaf (post-compromise security)."""
    def verify_ledger(self) -> LedgerReport:
        """Re-check the whole ledger: signatures, chains, seals, actor bindings.
        Problems are listed in the report, never fixed.
        """
    def verify_model(self, card_id: str) -> Verification:
        """Re-verify model card `card_id` from this replica: rebuild its dataset
        at its checkpoint, retrain, compare. A difference is an answer
        (`confirmed` false, with the step), not an error.

        Errors: `UnknownModelCard`, `InvalidLedgerEntry`, `InvalidArgument`.
        """
    def verify_outcome(self, entry_id: str) -> OutcomeVerification:
        """Re-evaluate outcome `entry_id` on this replica.

        Errors: `UnknownOutcome`, `InvalidArgument`.
        """
    def verify_outcomes(self) -> typing.List[OutcomeVerification]:
        """Re-check every outcome (duplicates included); executors of those
        that differ are flagged (`verify_ledger` reports them).
        """
    def withdraw_endorsement(self, target: EndorsementTarget) -> str:
        """Withdraw this node's endorsement of a target; below quorum it is no
        longer active (no new outcomes). Returns the entry id.

        Errors: as `endorse`.
        """

class Node(NodeProtocol):
    """One participant: a hospital's server, a clinician's app or a patient's
    phone. It owns one SQLite store file, sealed under a 32-byte storage key
    the app keeps in the platform keychain, and one signing identity.

    A `Node` is thread-safe: calls on it and on its `Network`s are serialized.
    Open each store file through one `Node` per process. Every call is
    synchronous and may do disk I/O: call it off the UI thread.
    """
    @classmethod
    def create(cls, path: str, storage_key: bytes, name: str) -> Node:
        """Create a new identity named `name` (1–255 printable ASCII characters
        without spaces, e.g. `hospital-a.example`) in a new store file at
        `path`, sealed under `storage_key` (exactly 32 bytes).

        Errors: `InvalidArgument` (key length, name), `Identity` (the store
        already holds an identity), `WrongStorageKey`, `Store`.
        """
    @classmethod
    def open(cls, path: str, storage_key: bytes) -> Node:
        """Open the store file at `path` whose identity was created before.

        Errors: `InvalidArgument` (key length), `WrongStorageKey`, `Identity`
        (no store file, or no identity in it yet), `Store`.
        """
    def ack_outgoing(self, id: int) -> None:
        """The transport has durably taken outgoing message `id`: forget it."""
    def author_id(self) -> str:
        """This node's author id (64 hex digits)."""
    def create_network(self, label: str) -> Network:
        """Create a network with this node as its only member; `label` is local."""
    def fingerprint(self) -> str:
        """This node's fingerprint: eight groups of four hex digits that people
        compare out of band before an invite.
        """
    def inspect_key_package(self, key_package: bytes) -> MemberInfo:
        """Who a key package names (checked: signature, ciphersuite), so an
        operator can compare its fingerprint before inviting.
        """
    def join_from_local_relay(self, relay_path: str, network_id: str, label: str) -> Network:
        """Join `network_id` from the Welcome an inviter left in the local relay
        file at `relay_path`, then catch up on the network's history.

        Errors: `InvalidWelcome` when the relay holds no Welcome for this
        node yet (the inviter has to sync after inviting), `Relay`, `Store`.
        """
    def join_network(self, welcome: bytes, label: str) -> Network:
        """Join a network from a Welcome made for one of this node's key
        packages: the raw MLS Welcome or the relay message carrying it, as it
        left the inviter's outbox (`MessageKind.Welcome`). Then feed the
        network's relay log to `Network.receive` to catch up.
        """
    def key_package(self) -> bytes:
        """A fresh MLS KeyPackage: give it to a member, who passes it to
        `Network.invite`. Each key package serves one invite.
        """
    def name(self) -> str:
        """The node name in this node's credential."""
    def network(self, network_id: str) -> Network:
        """A network this node belongs (or belonged) to, by hex id.

        Errors: `InvalidArgument` (not hex), `UnknownNetwork`.
        """
    def networks(self) -> typing.List[NetworkInfo]:
        """Every network in this store, including those this node was removed from."""
    def outgoing(self, limit: int) -> typing.List[OutgoingMessage]:
        """Up to `limit` waiting messages, oldest first, for every network. They
        stay queued until `ack_outgoing`; send them in this order.
        """
    def poll_outgoing(self) -> typing.Optional[OutgoingMessage]:
        """The oldest message waiting for the transport, if any (for an app that
        carries messages itself rather than through `Network.sync_local_relay`).
        It stays queued until `ack_outgoing`.
        """
    def tick(self, now_ms: typing.Optional[int]) -> TickReport:
        """Take the consent decisions that are due: every chart this node shared
        into another network whose consent period ended since is cut off
        there (its key rotated and withheld). Call it from a timer or when
        the app wakes; `sync_local_relay` calls it too. `now_ms` defaults to
        the system clock.
        """
    def verify_store(self) -> StoreAudit:
        """Audit the whole store file (reads all of it; opening and every read
        check only what they touch): integrity, every row's MAC, every
        table's digest, the schema.
        """

class NodeProtocol(typing.Protocol):
    """One participant: a hospital's server, a clinician's app or a patient's
    phone. It owns one SQLite store file, sealed under a 32-byte storage key
    the app keeps in the platform keychain, and one signing identity.

    A `Node` is thread-safe: calls on it and on its `Network`s are serialized.
    Open each store file through one `Node` per process. Every call is
    synchronous and may do disk I/O: call it off the UI thread.
    """
    def ack_outgoing(self, id: int) -> None:
        """The transport has durably taken outgoing message `id`: forget it."""
    def author_id(self) -> str:
        """This node's author id (64 hex digits)."""
    def create_network(self, label: str) -> Network:
        """Create a network with this node as its only member; `label` is local."""
    def fingerprint(self) -> str:
        """This node's fingerprint: eight groups of four hex digits that people
        compare out of band before an invite.
        """
    def inspect_key_package(self, key_package: bytes) -> MemberInfo:
        """Who a key package names (checked: signature, ciphersuite), so an
        operator can compare its fingerprint before inviting.
        """
    def join_from_local_relay(self, relay_path: str, network_id: str, label: str) -> Network:
        """Join `network_id` from the Welcome an inviter left in the local relay
        file at `relay_path`, then catch up on the network's history.

        Errors: `InvalidWelcome` when the relay holds no Welcome for this
        node yet (the inviter has to sync after inviting), `Relay`, `Store`.
        """
    def join_network(self, welcome: bytes, label: str) -> Network:
        """Join a network from a Welcome made for one of this node's key
        packages: the raw MLS Welcome or the relay message carrying it, as it
        left the inviter's outbox (`MessageKind.Welcome`). Then feed the
        network's relay log to `Network.receive` to catch up.
        """
    def key_package(self) -> bytes:
        """A fresh MLS KeyPackage: give it to a member, who passes it to
        `Network.invite`. Each key package serves one invite.
        """
    def name(self) -> str:
        """The node name in this node's credential."""
    def network(self, network_id: str) -> Network:
        """A network this node belongs (or belonged) to, by hex id.

        Errors: `InvalidArgument` (not hex), `UnknownNetwork`.
        """
    def networks(self) -> typing.List[NetworkInfo]:
        """Every network in this store, including those this node was removed from."""
    def outgoing(self, limit: int) -> typing.List[OutgoingMessage]:
        """Up to `limit` waiting messages, oldest first, for every network. They
        stay queued until `ack_outgoing`; send them in this order.
        """
    def poll_outgoing(self) -> typing.Optional[OutgoingMessage]:
        """The oldest message waiting for the transport, if any (for an app that
        carries messages itself rather than through `Network.sync_local_relay`).
        It stays queued until `ack_outgoing`.
        """
    def tick(self, now_ms: typing.Optional[int]) -> TickReport:
        """Take the consent decisions that are due: every chart this node shared
        into another network whose consent period ended since is cut off
        there (its key rotated and withheld). Call it from a timer or when
        the app wakes; `sync_local_relay` calls it too. `now_ms` defaults to
        the system clock.
        """
    def verify_store(self) -> StoreAudit:
        """Audit the whole store file (reads all of it; opening and every read
        check only what they touch): integrity, every row's MAC, every
        table's digest, the schema.
        """
