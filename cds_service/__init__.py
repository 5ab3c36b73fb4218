"""trialcds: CDS Hooks trial screening for NCT05271110."""
