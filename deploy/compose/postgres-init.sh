# Sourced by galaxy-local/postgres's entrypoint (/docker-entrypoint-initdb.d)
# once, when the cluster is created: one database per service, each owned by
# a login role of the service's name, and reachable by that role only. The
# roles' password is the superuser's (POSTGRES_PASSWORD, from
# GALAXY_STACK_POSTGRES_PASSWORD): one secret for the stack, while a service
# pointed at another's database is still refused. A deployment of its own
# gives each role its own password.
for galaxy_db in userservice mail notification rtmanager; do
	psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname postgres \
		--set db="$galaxy_db" --set pw="$POSTGRES_PASSWORD" <<-'SQL'
		CREATE ROLE :"db" LOGIN PASSWORD :'pw';
		CREATE DATABASE :"db" OWNER :"db";
		REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
	SQL
done
unset galaxy_db
