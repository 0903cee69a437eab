"""Reports for the area's management and finance: cost sharing, the dashboard's figures, charts, exports."""
