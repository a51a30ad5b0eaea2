"""Monitoring's models, moved from governance: the tables exist already (governance made
them, and keeps their names); only the state is created here."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('registry', '0005_version_integrity'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ('governance', '0014_audit_trail_moves_to_core'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
        migrations.CreateModel(
            name='AlertRule',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('metric', models.CharField(choices=[('feature_drift', 'feature drift'), ('prediction_drift', 'prediction drift'), ('performance_drop', 'live performance drop'), ('latency_p99', 'p99 latency (ms)'), ('error_rate', 'error rate'), ('integrity', 'artifact integrity')], max_length=20)),
                ('statistic', models.CharField(blank=True, help_text='Drift: psi, ks or js. Performance: the metric (accuracy, precision, recall, f1_score, auc_roc, mae, rmse). Empty otherwise.', max_length=20)),
                ('threshold', models.FloatField(help_text='Alert above this: a PSI, KS statistic or JS distance; a drop in metric points (0.05 = 5 points, or an increase for mae/rmse); milliseconds; a fraction.')),
                ('severity', models.CharField(choices=[('info', 'Info'), ('warning', 'Warning'), ('critical', 'Critical')], default='warning', max_length=10)),
                ('window_minutes', models.PositiveIntegerField(default=60)),
                ('min_rows', models.PositiveIntegerField(default=100, help_text='Fewer rows (drift), labelled rows (performance) or requests (latency, errors) in the window: not judged.')),
                ('resolve_after_runs', models.PositiveSmallIntegerField(default=3, help_text='Resolve the alert by itself after this many clear passes.')),
                ('enabled', models.BooleanField(default=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('model', models.ForeignKey(blank=True, help_text='Empty for a project default.', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='alert_rules', to='registry.registeredmodel')),
            ],
            options={
                'db_table': 'governance_alertrule',
                'ordering': ['model__name', 'metric', 'statistic'],
            },
        ),
        migrations.CreateModel(
            name='Alert',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('status', models.CharField(choices=[('open', 'Open'), ('acknowledged', 'Acknowledged'), ('resolved', 'Resolved')], db_index=True, default='open', max_length=15)),
                ('severity', models.CharField(choices=[('info', 'Info'), ('warning', 'Warning'), ('critical', 'Critical')], max_length=10)),
                ('title', models.CharField(max_length=300)),
                ('value', models.FloatField()),
                ('threshold', models.FloatField()),
                ('evidence', models.JSONField(default=dict)),
                ('count', models.PositiveIntegerField(default=1)),
                ('clear_runs', models.PositiveSmallIntegerField(default=0)),
                ('first_seen', models.DateTimeField()),
                ('last_seen', models.DateTimeField()),
                ('acknowledged_at', models.DateTimeField(blank=True, null=True)),
                ('resolved_at', models.DateTimeField(blank=True, null=True)),
                ('resolution', models.CharField(blank=True, max_length=300)),
                ('acknowledged_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('model', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='alerts', to='registry.registeredmodel')),
                ('resolved_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('rule', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='alerts', to='monitoring.alertrule')),
            ],
            options={
                'db_table': 'governance_alert',
                'ordering': ['-last_seen', '-id'],
            },
        ),
        migrations.CreateModel(
            name='MonitoringRun',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('route', models.CharField(max_length=12)),
                ('status', models.CharField(choices=[('ok', 'Ok'), ('alerting', 'Alerting'), ('no_data', 'No Data'), ('failed', 'Failed')], max_length=10)),
                ('figures', models.JSONField(default=dict)),
                ('summary', models.CharField(blank=True, max_length=500)),
                ('requests', models.PositiveIntegerField(default=0)),
                ('duration_ms', models.FloatField(default=0)),
                ('created_at', models.DateTimeField(db_index=True)),
                ('model', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='monitoring_runs', to='registry.registeredmodel')),
                ('version', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='monitoring_runs', to='registry.modelversion')),
            ],
            options={
                'db_table': 'governance_monitoringrun',
                'ordering': ['-created_at', '-id'],
            },
        ),
        migrations.CreateModel(
            name='Webhook',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=100)),
                ('url', models.URLField(max_length=500)),
                ('secret', models.CharField(help_text='Shared with the receiver, who checks the X-Mgov-Signature header with it.', max_length=200)),
                ('min_severity', models.CharField(choices=[('info', 'Info'), ('warning', 'Warning'), ('critical', 'Critical')], default='warning', max_length=10)),
                ('enabled', models.BooleanField(default=True)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('model', models.ForeignKey(blank=True, help_text='Empty: alerts of every model.', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='webhooks', to='registry.registeredmodel')),
            ],
            options={
                'db_table': 'governance_webhook',
                'ordering': ['name'],
            },
        ),
        migrations.CreateModel(
            name='AlertDelivery',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('event', models.CharField(max_length=20)),
                ('channel', models.CharField(max_length=10)),
                ('target', models.CharField(max_length=500)),
                ('status', models.CharField(choices=[('pending', 'Pending'), ('sending', 'Sending'), ('retrying', 'Retrying'), ('sent', 'Sent'), ('failed', 'Failed')], db_index=True, default='pending', max_length=10)),
                ('attempts', models.PositiveSmallIntegerField(default=0)),
                ('last_error', models.CharField(blank=True, max_length=500)),
                ('response_status', models.PositiveSmallIntegerField(blank=True, null=True)),
                ('next_attempt_at', models.DateTimeField(blank=True, null=True)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('sent_at', models.DateTimeField(blank=True, null=True)),
                ('alert', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='deliveries', to='monitoring.alert')),
                ('webhook', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='deliveries', to='monitoring.webhook')),
            ],
            options={
                'db_table': 'governance_alertdelivery',
                'ordering': ['-created_at', '-id'],
            },
        ),
        migrations.AddConstraint(
            model_name='alertrule',
            constraint=models.UniqueConstraint(condition=models.Q(('model__isnull', True)), fields=('metric', 'statistic'), name='alertrule_one_default_per_metric'),
        ),
        migrations.AddConstraint(
            model_name='alertrule',
            constraint=models.UniqueConstraint(condition=models.Q(('model__isnull', False)), fields=('model', 'metric', 'statistic'), name='alertrule_one_per_model_metric'),
        ),
        migrations.AddConstraint(
            model_name='alertrule',
            constraint=models.CheckConstraint(condition=models.Q(('window_minutes__gte', 1)), name='alertrule_window_positive'),
        ),
        migrations.AddConstraint(
            model_name='alertrule',
            constraint=models.CheckConstraint(condition=models.Q(('resolve_after_runs__gte', 1)), name='alertrule_resolve_after_positive'),
        ),
        migrations.AddConstraint(
            model_name='alert',
            constraint=models.UniqueConstraint(condition=models.Q(('status__in', ['open', 'acknowledged'])), fields=('rule', 'model'), name='alert_one_active_per_rule_and_model'),
        ),
        migrations.AddIndex(
            model_name='monitoringrun',
            index=models.Index(fields=['model', 'created_at'], name='monrun_model_time_idx'),
        ),
        migrations.AddConstraint(
            model_name='alertdelivery',
            constraint=models.UniqueConstraint(condition=models.Q(('webhook__isnull', True)), fields=('alert', 'event', 'channel', 'target'), name='alertdelivery_once_per_address'),
        ),
        migrations.AddConstraint(
            model_name='alertdelivery',
            constraint=models.UniqueConstraint(condition=models.Q(('webhook__isnull', False)), fields=('alert', 'event', 'webhook'), name='alertdelivery_once_per_webhook'),
        ),
            ],
            database_operations=[],
        ),
    ]
