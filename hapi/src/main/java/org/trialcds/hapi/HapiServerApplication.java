package org.trialcds.hapi;

import ca.uhn.fhir.batch2.jobs.config.Batch2JobsConfig;
import ca.uhn.fhir.jpa.api.config.ThreadPoolFactoryConfig;
import ca.uhn.fhir.jpa.batch2.JpaBatch2Config;
import ca.uhn.fhir.jpa.config.HapiJpaConfig;
import ca.uhn.fhir.jpa.config.r4.JpaR4Config;
import ca.uhn.fhir.jpa.subscription.channel.config.SubscriptionChannelConfig;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.boot.autoconfigure.elasticsearch.ElasticsearchRestClientAutoConfiguration;
import org.springframework.boot.autoconfigure.flyway.FlywayAutoConfiguration;
import org.springframework.boot.autoconfigure.orm.jpa.HibernateJpaAutoConfiguration;
import org.springframework.boot.autoconfigure.quartz.QuartzAutoConfiguration;
import org.springframework.boot.autoconfigure.thymeleaf.ThymeleafAutoConfiguration;
import org.springframework.context.annotation.Import;

/**
 * trialcds' own HAPI FHIR JPA test server: FHIR R4 on an in-memory H2 database.
 *
 * <p>HAPI's JPA layer is assembled from HAPI's own Spring configuration classes
 * (R4 DAOs and resource providers, the core JPA services and batch2, which HAPI
 * uses for $reindex after SearchParameter changes, and the in-JVM message broker
 * that batch2 needs; despite its name, SubscriptionChannelConfig only provides that
 * broker: no subscription matching or delivery is configured); {@link FhirServerConfig}
 * supplies the settings, the database wiring and the REST servlet.
 *
 * <p>Spring Boot auto-configurations that would start a second, competing copy of
 * something HAPI manages itself (JPA, Quartz, Flyway, Thymeleaf, Elasticsearch) are
 * switched off.
 */
@SpringBootApplication(
		exclude = {
			HibernateJpaAutoConfiguration.class,
			QuartzAutoConfiguration.class,
			FlywayAutoConfiguration.class,
			ThymeleafAutoConfiguration.class,
			ElasticsearchRestClientAutoConfiguration.class
		})
@Import({
	JpaR4Config.class,
	HapiJpaConfig.class,
	JpaBatch2Config.class,
	Batch2JobsConfig.class,
	ThreadPoolFactoryConfig.class,
	SubscriptionChannelConfig.class
})
public class HapiServerApplication {

	public static void main(String[] args) {
		SpringApplication.run(HapiServerApplication.class, args);
	}
}
