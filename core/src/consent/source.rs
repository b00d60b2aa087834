//! Who put a consent into the record: the patient's own node, or a member
//! institution recording it on the patient's behalf.

use crate::entry::AuthorId;

use super::resource::Consent;

/// Who recorded a consent, as the signature on its ledger entry shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConsentSource {
    /// Signed by one of the patient's own nodes (the phone).
    PatientNode(AuthorId),
    /// Recorded by a member institution's node on the patient's behalf;
    /// shown as such wherever the consent is shown.
    OnBehalf {
        /// The node that recorded it.
        recorder: AuthorId,
    },
}

impl ConsentSource {
    /// The node that signed the consent's entry.
    pub fn author(&self) -> &AuthorId {
        match self {
            ConsentSource::PatientNode(author) => author,
            ConsentSource::OnBehalf { recorder } => recorder,
        }
    }

    /// True if an institution recorded the consent for the patient.
    pub fn is_on_behalf(&self) -> bool {
        matches!(self, ConsentSource::OnBehalf { .. })
    }
}

/// Classifies the author of a consent's entry: one of the patient's own
/// nodes, or anyone else (an institution recording on the patient's behalf).
pub fn classify(consent_author: &AuthorId, patient_nodes: &[AuthorId]) -> ConsentSource {
    if patient_nodes.contains(consent_author) {
        ConsentSource::PatientNode(*consent_author)
    } else {
        ConsentSource::OnBehalf {
            recorder: *consent_author,
        }
    }
}

impl Consent {
    /// The same consent marked for `source`: no mark when the patient's node
    /// signed it, the recorded-on-behalf extension naming the recorder otherwise.
    pub fn marked_for(&self, source: &ConsentSource) -> Consent {
        Consent {
            recorded_on_behalf_by: match source {
                ConsentSource::PatientNode(_) => None,
                ConsentSource::OnBehalf { recorder } => Some(*recorder),
            },
            ..self.clone()
        }
    }

    /// True if the consent's mark agrees with who signed it: unmarked and
    /// signed by a patient node, or marked with exactly the recording node.
    /// A consent whose mark disagrees misstates who recorded it.
    pub fn mark_matches(&self, source: &ConsentSource) -> bool {
        match source {
            ConsentSource::PatientNode(_) => self.recorded_on_behalf_by.is_none(),
            ConsentSource::OnBehalf { recorder } => self.recorded_on_behalf_by == Some(*recorder),
        }
    }
}
