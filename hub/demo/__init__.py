"""The demo course: a small LMS that launches LearnHub the way Canvas or Moodle would."""
