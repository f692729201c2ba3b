-- A lab's results in one DuckDB query: each machine's `tsstats export --comparisons --format parquet` file in
-- exports/ (docs/lab.md). Per model and host: the completed runs, their mean energy per item and its spread,
-- and what makes the hosts comparable, as each run recorded it.
SELECT model, host, count(*) AS runs,
       avg(energy_per_item_J) AS energy_per_item_J,
       stddev_samp(energy_per_item_J) AS stdev_J,
       any_value(cpu_model) AS cpu_model,
       any_value(gpu_model) AS gpu_model,
       any_value(cpu_energy_method) AS cpu_energy_method,
       any_value(gpu_energy_method) AS gpu_energy_method,
       any_value(grid_region) AS grid_region
FROM (SELECT unnest(models) AS model, * FROM read_parquet('exports/*.parquet'))
WHERE status = 'completed' AND energy_per_item_J IS NOT NULL
GROUP BY model, host
ORDER BY model, host;
