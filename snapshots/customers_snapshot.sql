-- The customer dimension's history (SCD type 2): every tier a customer had, and when.
{% snapshot customers_snapshot %}
{{ config(
    schema='snapshots',
    unique_key='user_id',
    strategy='timestamp',
    updated_at='updated_at',
    invalidate_hard_deletes=true
) }}
select * from {{ ref('customers') }}
{% endsnapshot %}
