"""The managers' periodic reports (docs/reports.md): the period, the figures as
values (`model`), their labels in Chinese and English (`labels`), and the
renderers (CSV, xlsx, PDF). The figures are read from the records by
`callcenter.records.reports`."""
