package org.trialcds.hapi;

import ca.uhn.fhir.batch2.jobs.export.BulkDataExportProvider;
import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.context.support.IValidationSupport;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings;
import ca.uhn.fhir.jpa.api.dao.IFhirSystemDao;
import ca.uhn.fhir.jpa.config.util.HapiEntityManagerFactoryUtil;
import ca.uhn.fhir.jpa.model.config.PartitionSettings;
import ca.uhn.fhir.jpa.model.config.SubscriptionSettings;
import ca.uhn.fhir.jpa.model.dialect.HapiFhirH2Dialect;
import ca.uhn.fhir.jpa.provider.IJpaSystemProvider;
import ca.uhn.fhir.jpa.provider.JpaCapabilityStatementProvider;
import ca.uhn.fhir.jpa.provider.ValueSetOperationProvider;
import ca.uhn.fhir.jpa.search.DatabaseBackedPagingProvider;
import ca.uhn.fhir.narrative2.NullNarrativeGenerator;
import ca.uhn.fhir.rest.api.EncodingEnum;
import ca.uhn.fhir.rest.server.RestfulServer;
import ca.uhn.fhir.rest.server.interceptor.CorsInterceptor;
import ca.uhn.fhir.rest.server.provider.ResourceProviderFactory;
import ca.uhn.fhir.rest.server.util.ISearchParamRegistry;
import jakarta.persistence.EntityManagerFactory;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.beans.factory.config.ConfigurableListableBeanFactory;
import org.springframework.boot.web.servlet.ServletRegistrationBean;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.annotation.Primary;
import org.springframework.orm.jpa.JpaTransactionManager;
import org.springframework.orm.jpa.LocalContainerEntityManagerFactoryBean;
import org.springframework.web.cors.CorsConfiguration;

import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import javax.sql.DataSource;

/**
 * Settings, database wiring and the REST servlet of the test server.
 * Every value that matters to the tests is set here on purpose; see hapi/README.md.
 */
@Configuration
public class FhirServerConfig {

	private static final Logger ourLog = LoggerFactory.getLogger(FhirServerConfig.class);

	@Value("${trialcds.hapi.default-page-size:20}")
	private int myDefaultPageSize;

	@Value("${trialcds.hapi.max-page-size:1000}")
	private int myMaxPageSize;

	/** Origins a browser client may call from (comma-separated patterns; "*" = any). */
	@Value("${trialcds.hapi.cors-allowed-origins:*}")
	private String myCorsAllowedOrigins;

	/** The storage settings that differ from HAPI's defaults are what the tests rely on. */
	@Bean
	public JpaStorageSettings jpaStorageSettings() {
		JpaStorageSettings settings = new JpaStorageSettings();
		// Tests write and then search at once: never answer a search from an earlier,
		// cached result set (HAPI's default reuses one for 60 s).
		settings.setReuseCachedSearchResultsForMillis(null);
		// Seeds PUT resources with readable ids such as "seed-01-eligible" or "42".
		settings.setResourceClientIdStrategy(JpaStorageSettings.ClientIdStrategyEnum.ANY);
		settings.setResourceServerIdStrategy(JpaStorageSettings.IdStrategyEnum.UUID);
		// Seeds may reference resources that arrive later in the same load.
		settings.setAllowExternalReferences(true);
		settings.setAllowMultipleDelete(true);
		settings.setExpungeEnabled(true);
		settings.setDeleteExpungeEnabled(true);
		// Page size caps: _count up to myMaxPageSize is honoured (the paging provider below caps it).
		// No fetch-size maximum: HAPI applies that cap to the whole result of every search, Bulk
		// export's included — at 1000 an export silently stopped at 1000 Observations.
		settings.setFetchSizeDefaultMaximum(null);
		// FHIR Bulk Data export (trialcds screen --fhir-server): HAPI runs each $export as a
		// batch2 job and keeps its NDJSON files as Binary resources in the database.
		// Fast-tracking moves a small job from step to step at once instead of on the
		// once-a-minute maintenance pass, so a test export is done in seconds.
		settings.setEnableTaskBulkExportJobExecution(true);
		settings.setJobFastTrackingEnabled(true);
		settings.setBulkExportFileRetentionPeriodHours(2);
		return settings;
	}

	@Bean
	public PartitionSettings partitionSettings() {
		return new PartitionSettings(); // partitioning off
	}

	@Bean
	public SubscriptionSettings subscriptionSettings() {
		return new SubscriptionSettings(); // no subscription channel types: subscriptions off
	}

	@Primary
	@Bean
	public LocalContainerEntityManagerFactoryBean entityManagerFactory(
			ConfigurableListableBeanFactory theBeanFactory,
			FhirContext theFhirContext,
			JpaStorageSettings theStorageSettings,
			DataSource theDataSource) {
		LocalContainerEntityManagerFactoryBean factory =
				HapiEntityManagerFactoryUtil.newEntityManagerFactory(theBeanFactory, theFhirContext, theStorageSettings);
		factory.setPersistenceUnitName("HAPI_PU");
		factory.setDataSource(theDataSource);

		Map<String, Object> props = new HashMap<>();
		props.put("hibernate.dialect", HapiFhirH2Dialect.class.getName());
		// A fresh in-memory database on every start: let Hibernate create the schema.
		props.put("hibernate.hbm2ddl.auto", "update");
		props.put("hibernate.archive.scanner", "org.hibernate.boot.archive.scan.internal.DisabledScanner");
		props.put("hibernate.jdbc.batch_size", "20");
		props.put("hibernate.format_sql", "false");
		props.put("hibernate.show_sql", "false");
		props.put("hibernate.cache.use_query_cache", "false");
		props.put("hibernate.cache.use_second_level_cache", "false");
		props.put("hibernate.cache.use_structured_entries", "false");
		props.put("hibernate.cache.use_minimal_puts", "false");
		// No Lucene/Elasticsearch full-text index: plain database search only.
		props.put("hibernate.search.enabled", "false");
		factory.setJpaPropertyMap(props);
		return factory;
	}

	@Primary
	@Bean
	public JpaTransactionManager transactionManager(EntityManagerFactory theEntityManagerFactory) {
		JpaTransactionManager manager = new JpaTransactionManager();
		manager.setEntityManagerFactory(theEntityManagerFactory);
		return manager;
	}

	@Bean
	public RestfulServer restfulServer(
			IFhirSystemDao<?, ?> theSystemDao,
			ResourceProviderFactory theResourceProviderFactory,
			IJpaSystemProvider theSystemProvider,
			JpaStorageSettings theStorageSettings,
			ISearchParamRegistry theSearchParamRegistry,
			IValidationSupport theValidationSupport,
			DatabaseBackedPagingProvider thePagingProvider,
			ValueSetOperationProvider theValueSetOperationProvider,
			BulkDataExportProvider theBulkDataExportProvider) {
		FhirContext ctx = theSystemDao.getContext();
		ctx.setNarrativeGenerator(new NullNarrativeGenerator());

		RestfulServer server = new RestfulServer(ctx);
		server.registerProviders(theResourceProviderFactory.createProviders());
		server.registerProvider(theSystemProvider);
		// ValueSet/$expand and $validate-code, for value sets the tests or seeds load
		server.registerProvider(theValueSetOperationProvider);
		// [base]/$export, Patient/$export, Group/[id]/$export and $export-poll-status
		// (the bean comes from Batch2JobsConfig, imported by HapiServerApplication)
		server.registerProvider(theBulkDataExportProvider);

		JpaCapabilityStatementProvider capabilities = new JpaCapabilityStatementProvider(
				server, theSystemDao, theStorageSettings, theSearchParamRegistry, theValidationSupport);
		capabilities.setImplementationDescription("trialcds HAPI FHIR R4 test server");
		server.setServerConformanceProvider(capabilities);

		thePagingProvider.setDefaultPageSize(myDefaultPageSize);
		thePagingProvider.setMaximumPageSize(myMaxPageSize);
		server.setPagingProvider(thePagingProvider);

		server.registerInterceptor(new CorsInterceptor(corsConfiguration()));
		server.setDefaultResponseEncoding(EncodingEnum.JSON);
		server.setDefaultPrettyPrint(false);
		ourLog.info(
				"trialcds HAPI: R4, default page size {}, max page size {}, search cache reuse off, client ids ANY",
				myDefaultPageSize,
				myMaxPageSize);
		return server;
	}

	/**
	 * CORS, so a browser CDS client (the CDS Hooks sandbox, a SMART app) can read this server:
	 * preflights (OPTIONS) are answered and every response names the allowed origin. Any origin
	 * is safe for this loopback test server: it holds synthetic data and uses no cookies.
	 */
	private CorsConfiguration corsConfiguration() {
		CorsConfiguration config = new CorsConfiguration();
		for (String origin : myCorsAllowedOrigins.split(",")) {
			if (!origin.isBlank()) {
				config.addAllowedOriginPattern(origin.trim());
			}
		}
		config.addAllowedHeader("*");
		config.setAllowedMethods(Arrays.asList("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"));
		config.setExposedHeaders(Arrays.asList("Location", "Content-Location", "ETag", "Last-Modified", "X-Progress", "Retry-After"));
		config.setAllowCredentials(false);
		config.setMaxAge(600L);
		return config;
	}

	@Bean
	public ServletRegistrationBean<RestfulServer> fhirServlet(RestfulServer theServer) {
		ServletRegistrationBean<RestfulServer> registration = new ServletRegistrationBean<>(theServer, "/fhir/*");
		registration.setName("fhir");
		registration.setLoadOnStartup(1);
		return registration;
	}
}
