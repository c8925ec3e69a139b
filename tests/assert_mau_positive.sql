-- Singular test: every row returned is a failure.
select * from {{ ref('mau_summary') }} where mau <= 0
