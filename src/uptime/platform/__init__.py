"""Platform: settings, the MongoDB client, the embedded server, migrations, packaged resources."""
