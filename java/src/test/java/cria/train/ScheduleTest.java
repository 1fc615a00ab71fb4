package cria.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import cria.CriaException;
import org.junit.jupiter.api.Test;

/** The learning rates of README's recipe, computed by hand. */
class ScheduleTest {

    private static Schedule of(Schedule.Kind k, int warmup, int steps) {
        return new Schedule(k, 1e-3, 1e-4, warmup, steps, 0.5, 3, 4);
    }

    @Test
    void warmupRisesLinearlyToTheRate() {
        Schedule s = of(Schedule.Kind.COSINE, 4, 20);
        assertEquals(0.25e-3, s.at(0), 1e-15);
        assertEquals(0.5e-3, s.at(1), 1e-15);
        assertEquals(1e-3, s.at(3), 1e-15);
    }

    @Test
    void cosineEndsAtTheMinimumOnTheLastStep() {
        Schedule s = of(Schedule.Kind.COSINE, 4, 20);
        assertEquals(1e-3, s.at(4), 1e-15, "p = 0 right after warmup");
        double p = (11 - 4) / 15.0;
        assertEquals(1e-4 + 0.9e-3 * (1 + Math.cos(Math.PI * p)) / 2, s.at(11), 1e-15);
        assertEquals(1e-4, s.at(19), 1e-15);
    }

    @Test
    void linearStepConstantAndCyclical() {
        assertEquals(1e-3 + (1e-4 - 1e-3) * (6 - 2) / 7.0, of(Schedule.Kind.LINEAR, 2, 10).at(6), 1e-15);
        Schedule st = of(Schedule.Kind.STEP, 2, 10);
        assertEquals(1e-3, st.at(4), 1e-15);
        assertEquals(0.5e-3, st.at(5), 1e-15);
        assertEquals(0.25e-3, st.at(8), 1e-15);
        assertEquals(1e-3, of(Schedule.Kind.CONSTANT, 2, 10).at(9), 1e-15);
        Schedule cy = of(Schedule.Kind.CYCLICAL, 2, 30); // cycle 4: lr, mid, min, mid, lr ...
        assertEquals(1e-3, cy.at(2), 1e-15);
        assertEquals(1e-4 + 0.9e-3 * 0.5, cy.at(3), 1e-15);
        assertEquals(1e-4, cy.at(4), 1e-15);
        assertEquals(1e-3, cy.at(6), 1e-15);
    }

    @Test
    void absurdSettingsAreRefused() {
        assertThrows(CriaException.class, () -> new Schedule(Schedule.Kind.COSINE, -1, 0, 0, 10, 0.5, 1, 2));
        assertThrows(CriaException.class, () -> new Schedule(Schedule.Kind.COSINE, 1e-3, 1e-2, 0, 10, 0.5, 1, 2));
        assertThrows(CriaException.class, () -> new Schedule(Schedule.Kind.COSINE, 1e-3, 0, 11, 10, 0.5, 1, 2));
        assertThrows(CriaException.class, () -> new Schedule(Schedule.Kind.CYCLICAL, 1e-3, 0, 0, 10, 0.5, 1, 1));
        assertThrows(CriaException.class, () -> Schedule.Kind.parse("sawtooth"));
    }
}
