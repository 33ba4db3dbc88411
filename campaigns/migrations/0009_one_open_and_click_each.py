"""Each subscriber counts once per campaign (opens) and once per link (clicks): the repeats
recorded so far are removed, keeping the first, before the unique constraints go on."""

from django.db import migrations, models

DROP_REPEATS = """
DELETE FROM campaigns_open o USING campaigns_open first
WHERE o.campaign_id = first.campaign_id AND o.subscriber_id = first.subscriber_id
  AND (o.at, o.id) > (first.at, first.id);
DELETE FROM campaigns_click c USING campaigns_click first
WHERE c.campaign_id = first.campaign_id AND c.link_id = first.link_id
  AND c.subscriber_id = first.subscriber_id AND (c.at, c.id) > (first.at, first.id);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0008_unsubscribes"),
    ]

    operations = [
        migrations.RunSQL(DROP_REPEATS, migrations.RunSQL.noop),
        migrations.RemoveIndex(model_name="click", name="campaigns_c_campaig_f4a448_idx"),
        migrations.RemoveIndex(model_name="open", name="campaigns_o_campaig_e8adb7_idx"),
        migrations.AddConstraint(
            model_name="click",
            constraint=models.UniqueConstraint(
                fields=("campaign", "link", "subscriber_id"), name="one_click_each"
            ),
        ),
        migrations.AddConstraint(
            model_name="open",
            constraint=models.UniqueConstraint(
                fields=("campaign", "subscriber_id"), name="one_open_each"
            ),
        ),
    ]
