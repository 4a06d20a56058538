"""The five lifecycle assets, one module each, and the jobs and schedules that replace the old Airflow DAGs."""
