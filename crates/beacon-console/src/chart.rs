//! The aggregates the console shows, by their name in URLs: one dashboard page, one
//! JSON endpoint and one table export each.

/// Every aggregate the console shows, by its name in URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chart {
    Overview,
    Activity,
    Versions,
    Platforms,
    Hardware,
    Features,
    Workload,
}

impl Chart {
    pub const ALL: [Chart; 7] = [
        Chart::Overview,
        Chart::Activity,
        Chart::Versions,
        Chart::Platforms,
        Chart::Hardware,
        Chart::Features,
        Chart::Workload,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Overview => "overview",
            Self::Activity => "activity",
            Self::Versions => "versions",
            Self::Platforms => "platforms",
            Self::Hardware => "hardware",
            Self::Features => "features",
            Self::Workload => "workload",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|chart| chart.name() == name)
    }

    /// What the answer holds, for the OpenAPI document.
    pub(crate) fn summary(self) -> &'static str {
        match self {
            Self::Overview => {
                "Average weekly active clusters and nodes and new installations over the range's complete weeks, against as many weeks before them; the week in progress (`partial_week`) is left out of both"
            }
            Self::Activity => {
                "Active clusters, active nodes and new installations per ISO week; `complete: false` marks the week in progress (counted so far)"
            }
            Self::Versions => "Active clusters per EMQX version per week",
            Self::Platforms => "OS, OS version and edition shares of cluster-weeks",
            Self::Hardware => "CPU count, memory and cluster size histograms of cluster-weeks",
            Self::Features => "Feature adoption as a share of active cluster-weeks",
            Self::Workload => "Clients, topics and message rates: p50, p90, p99 and histograms",
        }
    }
}
